"""The assistant: Genie writes and runs SQL, Claude summarises and explains, the SQL guard
protects every query the app itself runs."""
from __future__ import annotations

import logging

from .claude import Claude
from .budget import RateLimiter, SharedSends
from .genie import Genie
from .guard import SqlGuard
from .service import Answer, Assistant, Conversation, Failure, download

log = logging.getLogger(__name__)

__all__ = ["Answer", "Assistant", "Conversation", "Failure", "assistant_for_session", "build_assistant",
           "download"]


def build_assistant(settings, backend) -> Assistant:
    """Genie and Claude as far as the settings allow; what is missing is said, not raised."""
    from ..workspace import workspace_client

    missing: list[str] = []
    workspace = backend.workspace
    if workspace is None and settings.databricks_available:
        try:
            workspace = workspace_client()
        except Exception as exc:  # bad credentials must not stop the rest of the app
            log.warning("Databricks workspace unavailable for the assistant: %s", exc)
            missing.append("valid Databricks credentials (the ones in the environment were refused)")
    if workspace is None and not missing:
        missing.append("DATABRICKS_HOST with DATABRICKS_TOKEN (or the app's service principal, as Databricks "
                       "Apps provides) so the app can reach Genie and the Claude serving endpoint named by "
                       f"SERVING_ENDPOINT (now {settings.serving_endpoint})")
    if not settings.genie_space_id:
        missing.append("GENIE_SPACE_ID, the id of a Genie space over these tables (in the Genie space's URL)")
    genie = claude = None
    if workspace is not None:
        if settings.genie_space_id:
            genie = Genie(workspace, settings.genie_space_id,
                          RateLimiter(settings.genie_per_minute, SharedSends(backend.db, backend.tables)))
        claude = Claude(workspace, settings.serving_endpoint)
    guard = SqlGuard(backend.reads, backend.tables, reader=settings.assistant_reader_role)   # replica if any
    return Assistant(backend.db, backend.tables, guard, genie=genie, claude=claude,
                     timeout=settings.assistant_timeout, missing=missing)


USER_TOKEN_HEADER = "X-Forwarded-Access-Token"


def assistant_for_session(assistant: Assistant, settings, headers: dict | None, user: str) -> Assistant:
    """The assistant a browser session uses: the app's own, or, with ASSISTANT_AS_USER and the
    user's token forwarded by Databricks Apps, one that asks Genie and Claude as that user."""
    from ..logs import register_secret
    from ..workspace import workspace_client

    token = (headers or {}).get(USER_TOKEN_HEADER)
    if not settings.assistant_as_user or not token or assistant.mode == "sql":
        return assistant
    register_secret(token)
    try:
        client = workspace_client(token=token, host=settings.databricks_host)
    except Exception as exc:  # the app's own identity still answers
        log.warning("cannot act as the signed-in user; using the app's identity: %s", exc)
        return assistant
    return assistant.as_user(client, user)


def dashboard_links(settings) -> tuple[str, str] | None:
    """(embed URL, published URL) of the AI/BI dashboard named by DASHBOARD_ID, if one is set."""
    if not settings.dashboard_id or not settings.databricks_host:
        return None
    host = settings.databricks_host.rstrip("/")
    host = host if host.startswith(("http://", "https://")) else f"https://{host}"
    from urllib.parse import quote
    dashboard = quote(settings.dashboard_id, safe="")
    return f"{host}/embed/dashboardsv3/{dashboard}", f"{host}/dashboardsv3/{dashboard}/published"
