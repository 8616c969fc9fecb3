"""Lakebase's rule for tokens on the embedded PostgreSQL: every token issued and not yet expired
lets its role log in, whichever process or instance holds it.

PostgreSQL keeps one password per role, so a fake that sets the password to each new token makes
every older token stop at once, which real Lakebase does not do: two processes or two instances
minting their own tokens would lock each other out. PostgreSQL can instead ask a RADIUS server
whether a password is good (`radius` in pg_hba.conf, built into every PostgreSQL). `TokenCheck` is
that server: it answers yes for a role's unexpired tokens and no otherwise, and `checked_by`
routes one database's logins for one role to it.
"""
from __future__ import annotations

import hashlib
import secrets
import socket
import struct
import threading
import time
from contextlib import contextmanager

import psycopg

ACCESS_REQUEST, ACCESS_ACCEPT, ACCESS_REJECT = 1, 2, 3
USER_NAME, USER_PASSWORD = 1, 2


class TokenCheck:
    """A RADIUS server on 127.0.0.1 (UDP) that accepts `role`'s unexpired tokens."""

    def __init__(self, role: str):
        self.role = role
        self.secret = secrets.token_hex(16).encode()
        self._expiries: dict[str, float] = {}          # token -> monotonic expiry
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.answers = {"accepted": 0, "refused": 0}

    @property
    def port(self) -> int:
        return self._socket.getsockname()[1]

    def __enter__(self) -> "TokenCheck":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._socket.close()

    def issue(self, token: str, seconds: float) -> None:
        with self._lock:
            self._expiries[token] = time.monotonic() + seconds

    def revoke_all(self) -> None:
        with self._lock:
            self._expiries.clear()

    def valid(self, user: str, token: str) -> bool:
        with self._lock:
            return user == self.role and self._expiries.get(token, 0) > time.monotonic()

    # -- the protocol (RFC 2865: Access-Request in, Access-Accept or -Reject out) ---------------

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                packet, sender = self._socket.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            reply = self._answer(packet)
            if reply is not None:
                self._socket.sendto(reply, sender)

    def _answer(self, packet: bytes) -> bytes | None:
        if len(packet) < 20 or packet[0] != ACCESS_REQUEST:
            return None
        identifier, authenticator = packet[1], packet[4:20]
        attributes = _attributes(packet[20:struct.unpack("!H", packet[2:4])[0]])
        user = attributes.get(USER_NAME, b"").decode(errors="replace")
        password = _reveal(attributes.get(USER_PASSWORD, b""), self.secret, authenticator)
        accepted = self.valid(user, password)
        self.answers["accepted" if accepted else "refused"] += 1
        code = ACCESS_ACCEPT if accepted else ACCESS_REJECT
        header = struct.pack("!BBH", code, identifier, 20)
        signature = hashlib.md5(header + authenticator + self.secret).digest()
        return header + signature


def _attributes(data: bytes) -> dict[int, bytes]:
    found, at = {}, 0
    while at + 2 <= len(data):
        kind, length = data[at], data[at + 1]
        if length < 2:
            break
        found[kind] = data[at + 2:at + length]
        at += length
    return found


def _reveal(hidden: bytes, secret: bytes, authenticator: bytes) -> str:
    """User-Password: 16-byte blocks, each XORed with MD5(secret + the previous block)."""
    plain, previous = b"", authenticator
    for at in range(0, len(hidden), 16):
        block = hidden[at:at + 16]
        pad = hashlib.md5(secret + previous).digest()
        plain += bytes(a ^ b for a, b in zip(block, pad))
        previous = block
    return plain.rstrip(b"\0").decode(errors="replace")


@contextmanager
def checked_by(check: TokenCheck, admin_dsn: str, database: str):
    """Logins of `check.role` to `database` over TCP ask `check`; the server's other logins are
    untouched. The rule is removed afterwards."""
    line = (f"host {database} {check.role} 127.0.0.1/32 radius radiusservers=127.0.0.1 "
            f"radiusports={check.port} radiussecrets={check.secret.decode()}\n")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        path = conn.execute("SHOW hba_file").fetchone()[0]
    with open(path) as f:
        before = f.read()
    _rewrite(admin_dsn, path, line + before)
    try:
        yield
    finally:
        _rewrite(admin_dsn, path, before)


def _rewrite(admin_dsn: str, path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
        errors = conn.execute("SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchall()
    if errors:
        raise RuntimeError(f"pg_hba.conf was refused: {errors}")
