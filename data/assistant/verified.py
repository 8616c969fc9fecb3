"""Verified questions: answers people trust, replayed to see whether Genie still gives them.

An editor promotes an answer from Genie that someone marked helpful: its question, SQL, row count
and a checksum of the result are kept in `app.verified_questions`. A check asks Genie each verified
question again, in a conversation of its own, and records per question whether it wrote the same
SQL (`same_sql`), other SQL with the same result (`same_result`), a different result
(`different_result`), or no answer (`failed`). The share of `same_sql` and `same_result` is the
score System shows, with its trend. The watcher runs a check once a day (one process for the whole
app, as for insights); anyone may run one from the Assistant's Verified tab.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import sqlglot
from sqlalchemy import text

from ..cache import Caches, cached
from ..database import Database
from ..errors import ConflictError, PermissionDenied, ValidationError
from ..tables import Tables
from .genie import Genie
from .snapshots import snapshot

log = logging.getLogger(__name__)

OUTCOMES = ("same_sql", "same_result", "different_result", "failed")
MATCHING = ("same_sql", "same_result")
_LOCK_KEY = 7_240_613                  # advisory lock of a check run (insights use 7_240_612)
DAY = 86_400.0


@dataclass
class Verified:
    verified_id: int
    question: str
    sql: str
    row_count: int
    checksum: str
    promoted_by: str
    promoted_at: datetime
    last_outcome: str | None = None
    last_checked: datetime | None = None


@dataclass
class CheckRun:
    run_id: int
    started_at: datetime
    total: int
    matched: int
    outcomes: dict[str, int]

    @property
    def score(self) -> float | None:
        return self.matched / self.total if self.total else None


def checksum(frame: pd.DataFrame) -> str:
    """The same for the same rows in any order (Genie may order ties differently)."""
    data = snapshot(frame)
    rows = sorted(json.dumps(row, default=str, sort_keys=True) for row in data["rows"])
    return hashlib.sha256(json.dumps([data["columns"], rows]).encode()).hexdigest()


def same_sql(a: str | None, b: str | None) -> bool:
    """Equal once both are rewritten by sqlglot (case, spacing, quoting); else equal as text."""
    def normal(sql: str) -> str:
        try:
            return ";".join(sqlglot.transpile(sql, read="databricks", write="databricks"))
        except sqlglot.errors.SqlglotError:
            return " ".join(sql.split()).lower()
    return bool(a and b) and normal(a) == normal(b)


class VerifiedQuestions:
    def __init__(self, db: Database, tables: Tables, *, editors=None, every: float = DAY):
        self.db, self.t, self.every = db, tables, every
        self.editors = editors              # an EditorPolicy: who may promote and remove
        self._caches = Caches()

    def can_edit(self, user: str) -> bool:
        return self.editors is not None and self.editors.can_edit(user)

    # -- keeping ----------------------------------------------------------------------------

    def promote(self, user: str, question: str, sql: str | None, frame: pd.DataFrame, *, source: str,
                log_id: int | None) -> int:
        """Keep a helpful answer from Genie as a verified question; PermissionDenied, ValidationError or
        ConflictError (the question is verified already, by whom) says why not."""
        if not self.can_edit(user):
            raise PermissionDenied("Only editors may verify answers (ASSISTANT_EDITORS).")
        if source != "genie" or not sql:
            raise ValidationError("Only answers Genie wrote SQL for can be verified.")
        with self.db.transaction("verified_promote") as conn:
            helpful = conn.execute(text(f"""
                SELECT count(*) FROM {self.t.assistant_feedback} WHERE log_id = :log AND rating = 1"""),
                {"log": log_id}).scalar()
            if not helpful:
                raise ValidationError("Mark the answer helpful first: only helpful answers can be verified.")
            kept = conn.execute(text(f"""
                INSERT INTO {self.t.verified_questions} (question, sql_text, row_count, checksum, promoted_by, log_id)
                VALUES (:question, :sql, :rows, :checksum, :user, :log)
                ON CONFLICT (question) DO NOTHING
                RETURNING verified_id"""), {"question": question.strip(), "sql": sql, "rows": len(frame),
                                             "checksum": checksum(frame), "user": user, "log": log_id}).scalar()
            if kept is None:      # never replace what a colleague verified: they must remove it first
                earlier = conn.execute(text(f"""
                    SELECT promoted_by, promoted_at FROM {self.t.verified_questions} WHERE question = :question"""),
                    {"question": question.strip()}).one()
                raise ConflictError(f"This question was already verified by {earlier.promoted_by} on "
                                    f"{earlier.promoted_at:%d %b %Y}; remove it in the Verified tab to verify "
                                    "this answer instead.")
            return kept

    def remove(self, verified_id: int, user: str) -> bool:
        if not self.can_edit(user):
            raise PermissionDenied("Only editors may remove verified questions (ASSISTANT_EDITORS).")
        with self.db.transaction("verified_remove") as conn:
            return conn.execute(text(f"DELETE FROM {self.t.verified_questions} WHERE verified_id = :id"),
                                {"id": verified_id}).rowcount == 1

    def all(self) -> list[Verified]:
        """Every verified question with the outcome of its latest check, the newest first."""
        rows = self.db.rows("verified_list", f"""
            SELECT v.verified_id, v.question, v.sql_text, v.row_count, v.checksum, v.promoted_by, v.promoted_at,
                   c.outcome, c.checked_at
            FROM {self.t.verified_questions} v
            LEFT JOIN LATERAL (SELECT outcome, checked_at FROM {self.t.verified_checks} c
                               WHERE c.verified_id = v.verified_id ORDER BY c.check_id DESC LIMIT 1) c ON true
            ORDER BY v.promoted_at DESC, v.verified_id DESC""")
        return [Verified(r["verified_id"], r["question"], r["sql_text"], r["row_count"], r["checksum"],
                         r["promoted_by"], r["promoted_at"], r["outcome"], r["checked_at"]) for r in rows]

    # -- checking ---------------------------------------------------------------------------

    def check(self, genie: Genie, *, deadline_s: float = 60.0, force: bool = True) -> CheckRun | None:
        """Ask Genie every verified question again and record how each came out. None when another
        process is checking now (or, without `force`, checked within the interval)."""
        with self.db.transaction("verified_check_claim") as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}).scalar():
                return None
            last = conn.execute(text(f"""
                SELECT extract(epoch FROM now() - max(started_at)) FROM {self.t.verified_runs}""")).scalar()
            if not force and last is not None and float(last) < self.every * 0.9:
                return None
            run_id = conn.execute(text(f"""
                INSERT INTO {self.t.verified_runs} (process) VALUES (:process) RETURNING run_id"""),
                {"process": f"{socket.gethostname()}:{os.getpid()}"}).scalar()
        outcomes = {name: 0 for name in OUTCOMES}
        questions = self.all()
        for verified in questions:
            outcome, sql, rows, digest, detail = self._replay(genie, verified, deadline_s)
            outcomes[outcome] += 1
            with self.db.transaction("verified_check") as conn:
                conn.execute(text(f"""
                    INSERT INTO {self.t.verified_checks} (run_id, verified_id, outcome, sql_text, row_count,
                                                         checksum, detail)
                    VALUES (:run, :id, :outcome, :sql, :rows, :checksum, :detail)"""),
                    {"run": run_id, "id": verified.verified_id, "outcome": outcome, "sql": sql, "rows": rows,
                     "checksum": digest, "detail": detail})
        matched = sum(outcomes[name] for name in MATCHING)
        with self.db.transaction("verified_run_end") as conn:
            started = conn.execute(text(f"""
                UPDATE {self.t.verified_runs} SET finished_at = now(), total = :total, matched = :matched,
                       outcomes = CAST(:outcomes AS jsonb)
                WHERE run_id = :run RETURNING started_at"""),
                {"run": run_id, "total": len(questions), "matched": matched,
                 "outcomes": json.dumps(outcomes)}).scalar()
        log.info("verified questions checked total=%d matched=%d", len(questions), matched)
        return CheckRun(run_id, started, len(questions), matched, outcomes)

    def _replay(self, genie: Genie, verified: Verified, deadline_s: float):
        try:
            reply = genie.ask(verified.question, None, on_status=lambda _s: None,
                              on_wait=lambda _position, _seconds: None, cancel=threading.Event(),
                              deadline=time.monotonic() + deadline_s)
        except Exception as exc:  # recorded as a failed check, with the reason
            return "failed", None, None, None, type(exc).__name__
        if reply.status != "COMPLETED" or reply.frame is None:
            return "failed", reply.sql, None, None, reply.error or reply.status
        digest = checksum(reply.frame)
        if same_sql(reply.sql, verified.sql):
            return "same_sql", reply.sql, len(reply.frame), digest, ""
        if digest == verified.checksum:
            return "same_result", reply.sql, len(reply.frame), digest, ""
        return "different_result", reply.sql, len(reply.frame), digest, ""

    def runs(self, limit: int = 10) -> list[CheckRun]:
        """The latest finished checks, newest first (System's score and trend)."""
        rows = self.db.rows("verified_runs", f"""
            SELECT run_id, started_at, total, matched, outcomes FROM {self.t.verified_runs}
            WHERE finished_at IS NOT NULL ORDER BY started_at DESC LIMIT :limit""", {"limit": limit})
        return [CheckRun(r["run_id"], r["started_at"], r["total"], r["matched"], dict(r["outcomes"])) for r in rows]

    @cached("verified_runs", 30)
    def recent_runs(self) -> list[CheckRun]:
        """The latest six checks, read at most every 30 s per process (System refreshes every few seconds)."""
        return self.runs(6)

    def examples(self) -> list[tuple[str, str]]:
        """(question, SQL) of every verified question, for the Genie space's example SQL."""
        return [(v.question, v.sql) for v in self.all()]
