"""One line per event on stdout, with every known secret masked before it is written.

Secrets (static passwords, minted tokens, Databricks credentials) are registered with
`register_secret` as soon as the app learns them; the filter masks them in any record,
including exception text, so a careless message cannot leak one.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

from .settings import SECRET_NAMES

_secrets: set[str] = set()
_lock = threading.Lock()
MASK = "[redacted]"
_MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words


def register_secret(value: str | None) -> None:
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        # One event, one line: tracebacks are folded onto the same line.
        return redact(line).replace("\n", " | ")


def setup_logging(level: str = "INFO", worker: str | None = None) -> None:
    """`worker` labels the lines of one of several server processes (`w2:dashboard.app ...`)."""
    for name in SECRET_NAMES:
        register_secret(os.environ.get(name))
    handler = logging.StreamHandler(sys.stdout)
    label = f"w{worker}:" if worker else ""
    handler.setFormatter(_RedactingFormatter(f"%(asctime)s %(levelname)s {label}%(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter that is noise for operators (and may echo request details).
    for noisy in ("databricks.sdk", "urllib3", "bokeh.server.views.ws", "tornado.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
