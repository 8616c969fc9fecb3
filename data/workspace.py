"""The Databricks SDK client the app uses for every Databricks call.

The SDK reads DATABRICKS_* itself; we only bound its retries so an unreachable workspace
fails in seconds instead of the SDK's default five minutes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import AppError, Category, classify

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

log = logging.getLogger(__name__)

RETRY_TIMEOUT_S = 30
HTTP_TIMEOUT_S = 20


def workspace_client(*, token: str | None = None, host: str | None = None) -> WorkspaceClient:
    """The app's client, or with `token` a client acting as that user (on-behalf-of-user)."""
    # Imported here: a second of start-up that an app without Databricks (the embedded default) skips.
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config
    try:
        if token:
            config = Config(host=host, token=token, auth_type="pat",
                            retry_timeout_seconds=RETRY_TIMEOUT_S, http_timeout_seconds=HTTP_TIMEOUT_S)
        else:
            config = Config(retry_timeout_seconds=RETRY_TIMEOUT_S, http_timeout_seconds=HTTP_TIMEOUT_S)
        return WorkspaceClient(config=config)
    except ValueError as exc:  # the SDK's way of saying the credentials do not add up
        raise AppError("The Databricks credentials in the environment are incomplete or conflicting.",
                       category=Category.CONFIGURATION, detail=str(exc)) from exc


@dataclass(frozen=True)
class LakebaseTarget:
    host: str
    user: str
    read_only_host: str | None = None     # readable secondaries (Provisioned) or the endpoint's read-only host


def resolve_lakebase_target(w: WorkspaceClient, *, host: str | None, user: str | None,
                            instance: str | None, endpoint: str | None) -> LakebaseTarget:
    """Fill in PGHOST and PGUSER from the workspace when the environment does not give them."""
    try:
        if not host and instance:
            host = w.database.get_database_instance(name=instance).read_write_dns
        elif not host and endpoint:
            host = w.postgres.get_endpoint(name=endpoint).status.hosts.host
        if not user:
            # A service principal's user name is its client ID, which is also its Postgres role.
            user = w.config.client_id or w.current_user.me().user_name
    except Exception as exc:
        raise classify(exc) from exc
    if not host:
        raise AppError(f"Lakebase {'instance ' + instance if instance else 'endpoint ' + str(endpoint)} "
                       "has no host yet (is it still starting?)", category=Category.CONFIGURATION)
    return LakebaseTarget(host=host, user=user, read_only_host=_read_only_host(w, instance, endpoint))


def _read_only_host(w: WorkspaceClient, instance: str | None, endpoint: str | None) -> str | None:
    """The host of the readable secondaries (Provisioned, when enabled) or the endpoint's read-only
    host (Autoscaling); None when there is none or it cannot be looked up (reads stay on the primary)."""
    try:
        if instance:
            return w.database.get_database_instance(name=instance).read_only_dns or None
        if endpoint:
            return getattr(w.postgres.get_endpoint(name=endpoint).status.hosts, "read_only_host", None) or None
    except Exception as exc:
        log.warning("could not look up a read-only host: %s", classify(exc).message)
    return None
