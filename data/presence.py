"""Who else is at an order: the sessions that have its form open or are editing one of its cells,
from every process and instance, in one UNLOGGED table of the app's schema.

A session says where it is (`be_at`) and leaves (`leave`); each change NOTIFYs `app_presence`, and
a process reads the table once per notification for all its sessions (`everyone`). A place is
kept while its process renews it (`renew`, from the heartbeat) and, for a cell being edited, until
its own deadline: a session that closes leaves, and the places of a process that stopped, or of
an edit left unfinished, are swept by the next heartbeat of any process, which says so.

Presence is a courtesy, never a lock: when the database cannot answer, a place is not recorded
or not shown, with one warning line, and nothing else changes.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import text

from .changes import ChangeFeed
from .errors import AppError
from .processes import STALE_AFTER, this_process

log = logging.getLogger(__name__)

CHANNEL = "app_presence"
PLACES = ("form", "grid")


@dataclass(frozen=True)
class Here:
    """One session at one order."""
    session: str
    user: str
    order_id: int
    place: str                    # "form": its form is open; "grid": editing a cell of its row
    fields: tuple[str, ...]       # the fields being edited (none: only looking)


class Presence:
    def __init__(self, db, tables, feed: ChangeFeed | None = None, process: str | None = None):
        """`feed`: this process's listener on CHANNEL (without one, every read goes to the table)."""
        self.db, self.t, self.feed = db, tables, feed
        self.process = process or this_process()
        self._read: tuple[int, list[Here]] | None = None       # (feed version, rows) read once per version
        self._lock = threading.Lock()

    def be_at(self, session: str, user: str, order_id: int, place: str, fields: tuple[str, ...] = (),
              for_seconds: float | None = None) -> None:
        """The session is at the order (replacing where it was in that place)."""
        assert place in PLACES
        self._write("presence_here", f"""
            INSERT INTO {self.t.presence} (session_id, place, process, user_name, order_id, fields, seen_at, until)
            VALUES (:session, :place, :process, :user, :order_id, :fields, now(),
                    now() + make_interval(secs => CAST(:for_seconds AS double precision)))
            ON CONFLICT (session_id, place) DO UPDATE SET
                order_id = EXCLUDED.order_id, fields = EXCLUDED.fields, seen_at = now(), until = EXCLUDED.until""",
                    {"session": session, "place": place, "process": self.process, "user": user,
                     "order_id": order_id, "fields": list(fields), "for_seconds": for_seconds})

    def leave(self, session: str, place: str | None = None) -> None:
        """The session left the place (or every place, when it closes)."""
        self._write("presence_leave", f"DELETE FROM {self.t.presence} WHERE session_id = :session "
                                      "AND (CAST(:place AS text) IS NULL OR place = :place)",
                    {"session": session, "place": place})

    def renew(self) -> None:
        """This process's places are still there; anyone's that lapsed (a process that stopped, an
        edit left unfinished) are removed, and every process is told."""
        try:
            with self.db.transaction("presence_renew") as conn:
                conn.execute(text(f"UPDATE {self.t.presence} SET seen_at = now() WHERE process = :process"),
                             {"process": self.process})
                swept = conn.execute(text(f"""
                    DELETE FROM {self.t.presence} WHERE seen_at < now() - make_interval(secs => :quiet)
                                                      OR until < now()"""), {"quiet": STALE_AFTER}).rowcount
                if swept:
                    conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        except AppError as exc:
            log.warning("presence not renewed: %s", exc.message)

    def everyone(self) -> list[Here]:
        """Every session at an order now, read once per change for the whole process."""
        version = self.feed.version if self.feed is not None else None
        with self._lock:
            if version is not None and self._read is not None and self._read[0] == version:
                return self._read[1]
            try:
                rows = self.db.rows("presence", f"""
                    SELECT session_id, user_name, order_id, place, fields FROM {self.t.presence}
                    WHERE seen_at > now() - make_interval(secs => :quiet) AND (until IS NULL OR until > now())
                    ORDER BY user_name, order_id, place""", {"quiet": STALE_AFTER})
            except AppError as exc:
                log.warning("presence not read: %s", exc.message)
                return []
            found = [Here(r["session_id"], r["user_name"], int(r["order_id"]), r["place"], tuple(r["fields"]))
                     for r in rows]
            if version is not None:
                self._read = (version, found)
            return found

    def _write(self, name: str, sql: str, params: dict) -> None:
        """Run `sql`, and tell every process if it changed anything."""
        try:
            with self.db.transaction(name) as conn:
                if conn.execute(text(sql), params).rowcount:
                    conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        except AppError as exc:
            log.warning("presence not recorded: %s", exc.message)
