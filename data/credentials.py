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
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from .errors import AppError, Category
from .logs import register_secret

log = logging.getLogger(__name__)

MAX_TOKEN_USE = 50 * 60      # never hand out a token older than this
REFRESH_MARGIN = 10 * 60     # re-mint this long before the token's own expiry
EXPIRY_MARGIN = 30           # a token this close to its expiry is not handed out while a new one is minted
MINT_DEADLINE = 10.0         # seconds a caller waits for a token in all, however many wait
# Mints run here, so a caller can stop waiting (a hung call then ends on the SDK's own time-outs).
_MINTING = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lakebase-token")


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
    renewable = False

    def password(self) -> str | None:
        return None

    def invalidate(self, value: str | None = None) -> None:
        pass

    def status(self) -> dict:
        return {"mode": self.mode, "kind": "local trust authentication (no password)"}


class StaticPassword:
    mode = "password"
    renewable = False

    def __init__(self, password: str):
        register_secret(password)
        self._password = password

    def password(self) -> str:
        return self._password

    def invalidate(self, value: str | None = None) -> None:
        pass

    def status(self) -> dict:
        return {"mode": self.mode, "kind": "static password from PGPASSWORD"}


class LakebaseTokens:
    """Caches one OAuth token and mints a new one when it is due (thread-safe).

    One mint at a time, shared: callers that need a token while one is being minted wait for that
    same attempt, each at most `deadline` seconds in all (the SDK alone may retry for longer), and
    all get its outcome. While a token is due for renewal but not yet expired, callers keep using it
    and the renewal runs in the background. A credential without a token is an error, never a
    cached empty password; a token the database refuses is forgotten (`invalidate`)."""

    mode = "lakebase"
    renewable = True

    def __init__(self, mint: Callable[[], tuple[str, datetime]], kind: str,
                 clock: Callable[[], float] = time.time, deadline: float = MINT_DEADLINE):
        self._mint = mint
        self.kind = kind
        self._clock = clock
        self.deadline = deadline
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._minting: Future | None = None
        self._minting_since = 0.0
        self.mints = 0
        self.failures = 0
        self.last_failure: str | None = None

    def password(self) -> str:
        with self._lock:
            now, token = self._clock(), self._token
            if token is not None and now < token.refresh_at:
                return token.value
            # One attempt at a time; one that outlived the deadline is left to end on its own.
            if self._minting is None or time.monotonic() - self._minting_since > self.deadline:
                self._minting_since = time.monotonic()
                self._minting = _MINTING.submit(self._mint_once, self._minting_since)
            attempt = self._minting
            if token is not None and now < token.expires_at - EXPIRY_MARGIN:
                return token.value                 # still good: renew in the background
        try:
            return attempt.result(timeout=self.deadline).value
        except FutureTimeout:
            raise AppError(f"Lakebase did not issue a database token within {self.deadline:g} s; the workspace "
                           "may be slow or unreachable.", category=Category.TIMEOUT) from None

    def invalidate(self, value: str | None = None) -> None:
        """Forget the cached token (the database refused it); the next connection mints a new one.
        With `value`, only if that is still the cached token (a newer one is kept)."""
        with self._lock:
            if self._token is not None and (value is None or self._token.value == value):
                self._token = None

    def _mint_once(self, started: float) -> Token:
        try:
            value, expires = self._mint()
            if not isinstance(value, str) or not value.strip():
                raise AppError("Lakebase answered without a database token; nothing was cached and the next "
                               "connection asks again.", category=Category.AUTHENTICATION)
            register_secret(value)
            now = self._clock()
            expires_at = expires.timestamp() if expires else now + 3600
            if expires_at <= now:
                raise AppError("Lakebase issued a database token that has already expired.",
                               category=Category.AUTHENTICATION)
            token = Token(value=value, minted_at=now, expires_at=expires_at)
        except Exception as exc:
            with self._lock:
                self.failures += 1
                self.last_failure = type(exc).__name__
                if self._minting_since == started:        # not if a newer attempt has taken over
                    self._minting = None
            raise
        with self._lock:
            if self._token is None or token.minted_at >= self._token.minted_at:
                self._token = token
            if self._minting_since == started:
                self._minting = None
            self.mints += 1
        log.info("lakebase token minted kind=%r expires_in_s=%d mints=%d", self.kind,
                 round(token.expires_at - token.minted_at), self.mints)
        return token

    def status(self) -> dict:
        with self._lock:
            token, minting = self._token, self._minting is not None
        now = self._clock()
        status = {"mode": self.mode, "kind": self.kind, "mints": self.mints, "mint_failures": self.failures,
                  "minting": minting}
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
