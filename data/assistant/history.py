"""Conversations that last: each person's questions and answers, kept in the app's schema.

A conversation belongs to the person who started it. Each turn keeps the question, where the
answer came from, the SQL, Genie's text, a snapshot of the result (up to the row limit) with when
it was taken, Claude's summary and its note on what is unusual, the follow-ups offered, and the
assistant log id under which thumbs are stored. A question that failed is kept with its message.

Who may open a turn by its link (`?workspace=assistant&answer=<id>`): an answer asked with the
app's own identity may be opened by anyone who may use the app, since they could ask the same and
get the same data. An answer asked on behalf of a user (with their own token, so Genie applied
their permissions) opens only for that same user: the app cannot tell whether somebody else's
permissions would show them the same rows, so others see the question and may ask it again as
themselves, never the stored result.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import text

from ..database import Database
from ..tables import Tables
from .service import Answer, Failure
from .snapshots import from_snapshot, snapshot

MAX_TITLE = 120


@dataclass
class Turn:
    turn_id: int
    conversation_id: int
    user_name: str
    asked_at: datetime
    question: str
    outcome: str                          # answered, or why not (as in the assistant log)
    source: str
    sql: str | None = None
    text: str = ""
    message: str = ""                     # why a question failed
    frame: pd.DataFrame | None = None     # the snapshot, when answered
    row_count: int = 0
    truncated: bool = False
    summary: str = ""
    unusual: tuple[str, str] = ("", "")
    follow_ups: list[str] = field(default_factory=list)
    log_id: int | None = None
    acted_as: str | None = None           # the identity it was asked as, when on behalf of a user
    rating: int | None = None             # this person's thumbs (1, -1) when known

    def as_answer(self) -> Answer:
        """The stored answer, as the chat shows an answer."""
        return Answer(self.question, self.source, self.frame if self.frame is not None else pd.DataFrame(),
                      sql=self.sql, text=self.text, row_count=self.row_count, truncated=self.truncated,
                      log_id=self.log_id, summary=self.summary, unusual=self.unusual,
                      follow_up_questions=list(self.follow_ups))


@dataclass
class Summary:
    conversation_id: int
    title: str
    started_at: datetime
    updated_at: datetime
    turns: int
    genie_id: str | None


class History:
    def __init__(self, db: Database, tables: Tables):
        self.db, self.t = db, tables

    # -- writing --------------------------------------------------------------------------

    def start(self, user: str, first_question: str) -> int:
        with self.db.transaction("conversation_start") as conn:
            return conn.execute(text(f"""
                INSERT INTO {self.t.conversations} (user_name, title) VALUES (:user, :title)
                RETURNING conversation_id"""), {"user": user, "title": _title(first_question)}).scalar()

    def record(self, conversation_id: int, user: str, result: Answer | Failure, *, genie_id: str | None = None,
               acted_as: str | None = None) -> int:
        """Keep one question and its answer (or why it failed); returns the turn's id."""
        answered = isinstance(result, Answer)
        values = {
            "conversation": conversation_id, "user": user, "question": result.question, "source": result.source,
            "outcome": "answered" if answered else result.outcome, "sql": result.sql, "text": result.text or "",
            "message": "" if answered else result.message, "log": result.log_id, "acted_as": acted_as,
            "snapshot": json.dumps(snapshot(result.frame)) if answered else None,
            "rows": result.row_count if answered else 0, "truncated": answered and result.truncated,
            "summary": (result.summary or "") if answered else "",
            "unusual": json.dumps(list(result.unusual or ("", ""))) if answered else '["", ""]',
            "follow_ups": json.dumps(list(result.follow_up_questions or [])) if answered else "[]",
        }
        with self.db.transaction("conversation_turn") as conn:
            turn_id = conn.execute(text(f"""
                WITH owned AS (
                    UPDATE {self.t.conversations} SET updated_at = now(), genie_id = coalesce(:genie, genie_id)
                    WHERE conversation_id = :conversation AND user_name = :user RETURNING conversation_id)
                INSERT INTO {self.t.assistant_turns}
                    (conversation_id, user_name, question, source, outcome, sql_text, genie_text, message, log_id,
                     acted_as, snapshot, row_count, truncated, summary, unusual, follow_ups)
                SELECT conversation_id, :user, :question, :source, :outcome, :sql, :text, :message, :log, :acted_as,
                       CAST(:snapshot AS jsonb), :rows, :truncated, :summary, CAST(:unusual AS jsonb),
                       CAST(:follow_ups AS jsonb)
                FROM owned
                RETURNING turn_id"""), {**values, "genie": genie_id}).scalar()
        if turn_id is None:
            raise LookupError("not this person's conversation")
        return turn_id

    def delete(self, conversation_id: int, user: str) -> bool:
        """Delete one of this person's conversations and its turns (its links stop working)."""
        with self.db.transaction("conversation_delete") as conn:
            return conn.execute(text(f"""
                DELETE FROM {self.t.conversations} WHERE conversation_id = :id AND user_name = :user"""),
                {"id": conversation_id, "user": user}).rowcount == 1

    # -- reading --------------------------------------------------------------------------

    def conversations(self, user: str, limit: int = 30) -> list[Summary]:
        """This person's conversations, the latest first."""
        rows = self.db.rows("conversations", f"""
            SELECT c.conversation_id, c.title, c.started_at, c.updated_at, c.genie_id,
                   (SELECT count(*) FROM {self.t.assistant_turns} t WHERE t.conversation_id = c.conversation_id)
                       AS turns
            FROM {self.t.conversations} c WHERE c.user_name = :user
            ORDER BY c.updated_at DESC, c.conversation_id DESC LIMIT :limit""", {"user": user, "limit": limit})
        return [Summary(r["conversation_id"], r["title"], r["started_at"], r["updated_at"], r["turns"], r["genie_id"])
                for r in rows]

    def turns(self, conversation_id: int, user: str) -> list[Turn]:
        """The conversation's turns in order; none when it is not this person's."""
        rows = self.db.rows("conversation_turns", f"""
            {_turns_of(self.t)}
            WHERE t.conversation_id = :id AND c.user_name = :user ORDER BY t.turn_id""",
                            {"id": conversation_id, "user": user})
        return [_turn(r) for r in rows]

    def shared(self, turn_id: int, viewer: str) -> tuple[Turn | None, str]:
        """A turn opened by its link: (the turn, "") when the viewer may see its result; (the turn
        without its result, why) when it was asked with someone else's permissions; (None, why)
        when there is no such answer."""
        rows = self.db.rows("shared_turn", f"{_turns_of(self.t)} WHERE t.turn_id = :id",
                            {"id": turn_id, "user": viewer})
        if not rows:
            return None, "There is no such answer: it may have been deleted with its conversation."
        turn = _turn(rows[0])
        if turn.acted_as is None or turn.acted_as == viewer:
            return turn, ""
        hidden = Turn(turn.turn_id, turn.conversation_id, turn.user_name, turn.asked_at, turn.question, turn.outcome,
                      turn.source)
        return hidden, ("This answer was asked with its author's own data permissions, so its result is shown only "
                        "to them. Run it again to ask with yours.")


def _turns_of(t: Tables) -> str:
    """Turns with their conversation and the viewer's (:user) thumbs."""
    return f"""
        SELECT t.*, f.rating FROM {t.assistant_turns} t JOIN {t.conversations} c USING (conversation_id)
        LEFT JOIN {t.assistant_feedback} f ON f.log_id = t.log_id AND f.user_name = :user"""


def _turn(row: dict) -> Turn:
    unusual = row["unusual"] or ["", ""]
    return Turn(row["turn_id"], row["conversation_id"], row["user_name"], row["asked_at"], row["question"],
                row["outcome"], row["source"], sql=row["sql_text"], text=row["genie_text"], message=row["message"],
                frame=from_snapshot(row["snapshot"]) if row["snapshot"] is not None else None,
                row_count=row["row_count"], truncated=row["truncated"], summary=row["summary"],
                unusual=(unusual[0], unusual[1]), follow_ups=list(row["follow_ups"] or []), log_id=row["log_id"],
                acted_as=row["acted_as"], rating=row.get("rating"))


def _title(question: str) -> str:
    title = " ".join(question.split())
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "\u2026"
