"""Credential providers: where the password for each new physical connection comes from.

- `NoPassword`: the embedded PostgreSQL (local socket, trust authentication).
- `StaticPassword`: PGPASSWORD.
- `LakebaseTokens`: OAuth tokens minted through the Databricks SDK for a Provisioned instance
  (`w.database`) or an Autoscaling endpoint (`w.postgres`). A token is minted when the pool
  opens a connection and none is cached, re-minted shortly before it expires and never used
  longer than 50 minutes. Tokens are registered as secrets so no log line can show one.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .logs import register_secret

log = logging.getLogger(__name__)

MAX_TOKEN_USE = 50 * 60      # never hand out a token older than this
REFRESH_MARGIN = 10 * 60     # re-mint this long before the token's own expiry


@dataclass(frozen=True)
class Token:
    value: str
    minted_at: float
    expires_at: float

    @property
    def refresh_at(self) -> float:
        lifetime = self.expires_at - self.minted_at
        # Hour-long tokens: re-mint at 50 min (10 min margin). Short tokens (tests, custom TTLs)
        # keep a proportional margin, so a 12 s token is re-minted after 10 s, not on every connect.
        margin = min(REFRESH_MARGIN, lifetime / 6)
        return self.minted_at + min(lifetime - margin, MAX_TOKEN_USE)


class NoPassword:
    mode = "embedded"

    def password(self) -> str | None:
        return None

    def invalidate(self) -> None:
        pass

    def status(self) -> dict:
        return {"mode": self.mode, "kind": "local trust authentication (no password)"}


class StaticPassword:
    mode = "password"

    def __init__(self, password: str):
        register_secret(password)
        self._password = password

    def password(self) -> str:
        return self._password

    def invalidate(self) -> None:
        pass

    def status(self) -> dict:
        return {"mode": self.mode, "kind": "static password from PGPASSWORD"}


class LakebaseTokens:
    """Caches one OAuth token and mints a new one when it is due (thread-safe)."""

    mode = "lakebase"

    def __init__(self, mint: Callable[[], tuple[str, datetime]], kind: str,
                 clock: Callable[[], float] = time.time):
        self._mint = mint
        self.kind = kind
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.mints = 0
        self.failures = 0

    def password(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._token.refresh_at:
                self._token = self._mint_now(now)
            return self._token.value

    def invalidate(self) -> None:
        """Forget the cached token (it was refused); the next connection mints a new one."""
        with self._lock:
            self._token = None

    def _mint_now(self, now: float) -> Token:
        try:
            value, expires = self._mint()
        except Exception:
            self.failures += 1
            raise
        register_secret(value)
        self.mints += 1
        expires_at = expires.timestamp() if expires else now + 3600
        token = Token(value=value, minted_at=now, expires_at=expires_at)
        log.info("lakebase token minted kind=%r expires_in_s=%d mints=%d", self.kind,
                 round(expires_at - now), self.mints)
        return token

    def status(self) -> dict:
        with self._lock:
            token = self._token
        now = self._clock()
        status = {"mode": self.mode, "kind": self.kind, "mints": self.mints, "mint_failures": self.failures}
        if token is not None:
            status.update(age_s=round(now - token.minted_at, 1),
                          expires_in_s=round(token.expires_at - now, 1),
                          refresh_in_s=round(token.refresh_at - now, 1))
        return status


def _parse_rfc3339(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def provisioned_tokens(workspace, instance_name: str, **kwargs) -> LakebaseTokens:
    def mint() -> tuple[str, datetime | None]:
        cred = workspace.database.generate_database_credential(
            instance_names=[instance_name], request_id=str(uuid.uuid4()))
        return cred.token, _parse_rfc3339(cred.expiration_time)

    return LakebaseTokens(mint, kind=f"Provisioned instance {instance_name}", **kwargs)


def autoscaling_tokens(workspace, endpoint: str, **kwargs) -> LakebaseTokens:
    def mint() -> tuple[str, datetime | None]:
        cred = workspace.postgres.generate_database_credential(endpoint=endpoint)
        expires = cred.expire_time.ToDatetime(tzinfo=timezone.utc) if cred.expire_time else None
        return cred.token, expires

    return LakebaseTokens(mint, kind=f"Autoscaling endpoint {endpoint}", **kwargs)
