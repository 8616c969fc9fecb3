"""The assistant: a question in plain language becomes SQL, a result, a summary and follow-ups.

Genie writes and runs the SQL when a space is configured; without Genie, Claude writes SQL from
the app's own schema and the SQL guard runs it; `/sql SELECT …` runs a person's own query through
the same guard. Answers to the same question are cached for five minutes, for every process and
instance (`SharedCache`), with what Claude later adds to them. Every question is
logged (who, what, SQL, how long, cached, outcome) and thumbs up/down are stored.
"""
from __future__ import annotations

import copy
import io
import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterator

import pandas as pd
from sqlalchemy import text

from ..database import Database
from ..errors import AppError, Category, ValidationError
from ..shared_cache import SharedCache, cache_key
from ..spreadsheet import safe_frame
from ..tables import Tables
from .claude import Claude
from .costs import Usage, record_usage
from .selection import FilterCheck, Selection, check_filter
from .deadline import before
from .genie import Cancelled, Genie
from .guard import SqlGuard
from .snapshots import from_snapshot, snapshot

log = logging.getLogger(__name__)

# Questions this app's own tables can answer, offered before the first question.
STARTERS = (
    "Which 10 cities had the most viewers last month?",
    "How many orders were placed today, by status?",
    "What is the average order value by product category over the last 30 days?",
    "Which amenities lift confirmations most for ski resorts?",
    "How does mobile conversion compare with desktop in Phuket?",
    "Which fashion article types have the most products, and at what average price?",
)
SQL_STARTER = ("/sql SELECT city, total_viewers, conversion_rate FROM city_investment "
               "ORDER BY total_viewers DESC LIMIT 10")
SQL_COMMAND = re.compile(r"^\s*/sql\b\s*(.*)$", re.IGNORECASE | re.DOTALL)
MAX_QUESTION = 2000


@dataclass
class Conversation:
    """One chat: the Genie conversation it continues, and the question that started it."""

    genie_id: str | None = None
    first_question: str | None = None


@dataclass
class Answer:
    question: str
    source: str                              # genie | claude | sql
    frame: pd.DataFrame
    sql: str | None = None
    text: str = ""                           # Genie's own answer text
    row_count: int = 0
    truncated: bool = False
    size_note: str = ""                      # what was cut for size (the SQL guard's limits), if anything
    cached: bool = False
    seconds: float = 0.0
    suggested: list[str] = field(default_factory=list)
    conversation_id: str | None = None
    message_id: str | None = None
    log_id: int | None = None
    summary: str | None = None               # Claude's, once streamed
    unusual: tuple[str, str] | None = None   # Claude's (what stands out, confidence), once asked
    usage: Usage = field(default_factory=Usage)   # Claude's tokens for this answer
    selection: Selection | None = None       # what was selected in a chart when this was asked
    filter_check: FilterCheck | None = None  # whether the SQL filters on that selection
    follow_up_questions: list[str] | None = None
    cache_key: str | None = None             # where the shared cache keeps it (to add what comes later)


@dataclass
class Failure:
    question: str
    outcome: str                             # failed | cancelled | timeout | refused | unavailable | no_sql
    message: str
    source: str = "none"                     # what was asked: genie | claude | sql | none
    sql: str | None = None
    text: str = ""
    log_id: int | None = None
    usage: Usage = field(default_factory=Usage)


class Assistant:
    def __init__(self, db: Database, tables: Tables, guard: SqlGuard, *, genie: Genie | None = None,
                 claude: Claude | None = None, timeout: float = 30.0, cache_seconds: float = 300,
                 missing: list[str] | None = None):
        self.db, self.t, self.guard, self.genie, self.claude = db, tables, guard, genie, claude
        self.timeout = timeout
        self.missing = missing or []
        self._cache = SharedCache(db, tables.answer_cache, "assistant_answers", cache_seconds)
        self._schema_text: str | None = None
        self.acting_as: str | None = None        # a user's identity when asking on their behalf

    def as_user(self, workspace, identity: str) -> "Assistant":
        """The same assistant asking Genie and Claude through `workspace` (a client holding the
        user's own token), so answers respect that user's permissions. It shares the log, the
        guard and the rate queue; cached answers are kept apart per user."""
        twin = copy.copy(self)
        if self.genie is not None:
            twin.genie = Genie(workspace, self.genie.space_id, self.genie.limiter, first_poll=self.genie.first_poll,
                               max_poll=self.genie.max_poll)
        if self.claude is not None:
            twin.claude = Claude(workspace, self.claude.endpoint)
        twin.acting_as = identity
        return twin

    @property
    def mode(self) -> str:
        return "genie" if self.genie else "claude" if self.claude else "sql"

    def starter_questions(self) -> list[str]:
        """Plain-language starters when something can answer them, else a /sql example."""
        return list(STARTERS) if self.mode != "sql" else [SQL_STARTER]

    # -- asking ---------------------------------------------------------------------------

    def ask(self, user: str, question: str, conversation: Conversation, *, on_status: Callable[[str], None],
            on_wait: Callable[[int, float], None] = lambda position, seconds: None,
            cancel: threading.Event | None = None, fresh: bool = False,
            selection: Selection | None = None) -> Answer | Failure:
        """`fresh`: ask again even when the answer is cached (Run again on a stored answer).
        `selection`: what the person selected in a chart; whoever writes the SQL is told to filter on
        it, and the answer says whether its SQL does."""
        cancel = cancel or threading.Event()
        question = question.strip()
        started = time.monotonic()
        if not question:
            return Failure(question, "refused", "Type a question, or /sql followed by a SELECT query.")
        if len(question) > MAX_QUESTION:
            return self._logged(user, Failure(question, "refused", f"Questions are limited to {MAX_QUESTION:,} "
                                                                   "characters."), started)
        command = SQL_COMMAND.match(question)
        try:
            if command:
                return self._logged(user, self._run_sql(question, command.group(1), on_status), started)
            asked = f"{question}\n\n{selection.context()}" if selection else question
            key = self._cache_key(asked, conversation)
            kept = None if fresh else self._cache.get(key)
            if kept is not None:
                on_status("CACHED")
                hit = replace(_from_cached(kept), question=question, cached=True, cache_key=key)
                if selection is not None:
                    hit.selection, hit.filter_check = selection, check_filter(hit.sql, selection)
                return self._logged(user, hit, started)
            if self.genie:
                result = self._ask_genie(asked, conversation, on_status, on_wait, cancel, started)
            elif self.claude:
                result = self._ask_claude(asked, on_status, started + self.timeout)
            else:
                result = Failure(question, "unavailable", self.unavailable_message())
            result.question = question           # as the person asked it (the filter is shown apart)
            if isinstance(result, Answer):
                result.seconds = time.monotonic() - started
                if selection is not None:
                    result.selection, result.filter_check = selection, check_filter(result.sql, selection)
                self._cache.put(key, _cached_form(result))
                result.cache_key = key
            conversation.first_question = conversation.first_question or question
            return self._logged(user, result, started)
        except Cancelled:
            return self._logged(user, Failure(question, "cancelled", "Stopped. Ask again whenever you like.",
                                              source=self.mode), started)
        except AppError as exc:
            outcome = "timeout" if exc.category is Category.TIMEOUT else "failed"
            message = (f"No answer within {self.timeout:.0f} seconds. Try a narrower question (one measure, "
                       "one period) or ask again in a moment." if outcome == "timeout" else exc.message)
            log.warning("assistant question failed outcome=%s detail=%s", outcome, exc.detail or exc.message)
            return self._logged(user, Failure(question, outcome, message, source=self.mode), started)

    def _cache_key(self, question: str, conversation: Conversation) -> str:
        normalise = lambda q: re.sub(r"\s+", " ", q.strip().lower())  # noqa: E731
        context = normalise(conversation.first_question) if conversation.first_question else ""
        return cache_key("answer", self.mode, self.acting_as, context, normalise(question))

    def clear_cache(self) -> None:
        """Forget every cached answer, in every process and instance (Refresh data)."""
        self._cache.clear()

    def _remember(self, answer: Answer, **learnt) -> None:
        """Add what was learnt after the answer (Claude's summary, say) to its cached copy."""
        if answer.cache_key is not None:
            self._cache.add(answer.cache_key, learnt)

    def _run_sql(self, question: str, sql: str, on_status) -> Answer | Failure:
        on_status("EXECUTING_QUERY")
        try:
            result = self.guard.run(sql)
        except ValidationError as exc:
            return Failure(question, "refused", exc.message, source="sql", sql=sql)
        except AppError as exc:
            if exc.category is not Category.TIMEOUT:
                raise
            return Failure(question, "timeout", f"The query took longer than {self.guard.timeout_ms / 1000:g} s, the "
                           "limit for assistant queries; narrow it down (fewer rows, a shorter period).",
                           source="sql", sql=sql)
        return Answer(question, "sql", result.frame, sql=result.sql, row_count=len(result.frame),
                      truncated=result.truncated, size_note=result.note, seconds=result.seconds)

    def _ask_genie(self, question, conversation, on_status, on_wait, cancel, started) -> Answer | Failure:
        reply = self.genie.ask(question, conversation.genie_id, on_status=on_status, on_wait=on_wait,
                               cancel=cancel, deadline=started + self.timeout)
        conversation.genie_id = reply.conversation_id
        ids = dict(conversation_id=reply.conversation_id, message_id=reply.message_id)
        if reply.status == "FAILED":
            return Failure(question, "failed", f"Genie could not answer: {reply.error or 'it gave no reason'}.",
                           source="genie", sql=reply.sql, text=reply.text)
        if reply.status == "CANCELLED":
            return Failure(question, "cancelled", "Genie cancelled this question.", source="genie", sql=reply.sql)
        if not reply.sql or reply.frame is None:
            return Failure(question, "no_sql", "Genie answered without a query, so there is no table to show.",
                           source="genie", text=reply.text)
        answer = Answer(question, "genie", reply.frame, sql=reply.sql, text=reply.text or reply.description,
                        row_count=reply.row_count or len(reply.frame), truncated=reply.truncated,
                        suggested=reply.suggested)
        answer.conversation_id, answer.message_id = ids["conversation_id"], ids["message_id"]
        return answer

    def _ask_claude(self, question: str, on_status, deadline: float) -> Answer | Failure:
        on_status("ASKING_AI")
        schema = self.schema_text()
        usage = Usage()
        sql = before(deadline, lambda: self.claude.write_sql(question, schema, meter=usage),
                     what="Claude did not answer in time.")
        on_status("EXECUTING_QUERY")
        try:
            result = self.guard.run(sql)
        except ValidationError as exc:
            return Failure(question, "refused", f"The query Claude wrote was not run: {exc.message}",
                           source="claude", sql=sql, usage=usage)
        return Answer(question, "claude", result.frame, sql=result.sql, row_count=len(result.frame),
                      truncated=result.truncated, size_note=result.note, usage=usage)

    def schema_text(self) -> str:
        """The app's tables and columns, for Claude to write SQL against."""
        if self._schema_text is None:
            rows = self.db.rows("assistant_schema", """
                SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns
                WHERE table_schema || '.' || table_name = ANY(:tables)
                ORDER BY table_schema, table_name, ordinal_position""", {"tables": self.guard.allowed_tables})
            tables: dict[str, list[str]] = {}
            for r in rows:
                tables.setdefault(f"{r['table_schema']}.{r['table_name']}", []).append(
                    f"{r['column_name']} {r['data_type']}")
            self._schema_text = "\n".join(f"{name}({', '.join(columns)})" for name, columns in tables.items())
        return self._schema_text

    def unavailable_message(self) -> str:
        return ("Questions in plain language need Genie or Claude: " + "; ".join(self.missing) +
                ". Meanwhile, /sql SELECT … runs a read-only query on the app's tables.")

    # -- after an answer ------------------------------------------------------------------

    def summary(self, answer: Answer) -> Iterator[str]:
        """Claude's summary as it streams in; kept on the answer, so a cached answer repeats it."""
        if answer.summary is not None:
            if answer.summary:
                yield answer.summary
            return
        if self.claude is None or answer.frame.empty:
            return
        pieces = []
        for piece in self.claude.summary(answer.question, answer.frame, answer.sql, answer.truncated,
                                         meter=answer.usage):
            pieces.append(piece)
            yield piece
        answer.summary = "".join(pieces)
        self._remember(answer, summary=answer.summary)

    def unusual(self, answer: Answer) -> tuple[str, str]:
        """What Claude finds unusual in the result and how sure it is; ("", "") when nothing stands
        out, when Claude is not configured, or when it failed (the answer stands without it)."""
        if answer.unusual is None:
            if self.claude is None or len(answer.frame) < 2:
                return "", ""
            try:
                answer.unusual = self.claude.unusual(answer.question, answer.frame, meter=answer.usage)
            except AppError as exc:
                log.warning("unusual-values note unavailable: %s", exc.detail or exc.message)
                return "", ""
            self._remember(answer, unusual=list(answer.unusual))
        return answer.unusual

    def follow_ups(self, answer: Answer) -> list[str]:
        """Genie's suggestions, else Claude's; kept on the answer like the summary."""
        if answer.follow_up_questions is None:
            answer.follow_up_questions = self._follow_ups(answer)
            if answer.follow_up_questions is not None:
                self._remember(answer, follow_up_questions=answer.follow_up_questions)
        return answer.follow_up_questions or []

    def _follow_ups(self, answer: Answer) -> list[str] | None:
        """None when Claude failed, so a later showing asks again."""
        if answer.suggested:
            return answer.suggested[:3]
        if self.claude is None or answer.frame.empty:
            return []
        try:
            return self.claude.follow_ups(answer.question, answer.frame, meter=answer.usage)
        except AppError as exc:
            log.warning("follow-up questions unavailable: %s", exc.detail or exc.message)
            return None

    def explain(self, failure: Failure) -> tuple[str, list[str]]:
        if self.claude is None or failure.outcome in ("cancelled", "unavailable"):
            return "", []
        try:
            return self.claude.explain_failure(failure.question, failure.message, meter=failure.usage)
        except AppError as exc:
            log.warning("failure explanation unavailable: %s", exc.detail or exc.message)
            return "", []

    def rephrasings(self, answer: Answer) -> list[str]:
        """Other ways to ask a question whose answer did not help (Claude's); none without Claude."""
        if self.claude is None:
            return []
        try:
            _why, questions = self.claude.explain_failure(
                answer.question, "The person found the answer unhelpful: it may have misread the question.",
                meter=answer.usage)
        except AppError as exc:
            log.warning("rephrasings unavailable: %s", exc.detail or exc.message)
            return []
        return questions

    def record_usage(self, result: Answer | Failure) -> None:
        """Claude's tokens for this answer, added to its log row (System shows them per day)."""
        try:
            record_usage(self.db, self.t, result.log_id, result.usage)
        except AppError as exc:  # a cost figure missing is no reason to fail an answer
            log.warning("Claude's token count not written: %s", exc.detail or exc.message)

    def feedback(self, user: str, answer: Answer, positive: bool) -> None:
        sent = False
        if self.genie and answer.conversation_id and answer.message_id:
            try:
                self.genie.feedback(answer.conversation_id, answer.message_id, positive)
                sent = True
            except Exception as exc:  # the vote is stored either way
                log.warning("Genie feedback not sent: %s", exc)
        with self.db.transaction("assistant_feedback") as conn:
            conn.execute(text(f"""
                INSERT INTO {self.t.assistant_feedback} (log_id, user_name, rating, sent_to_genie)
                VALUES (:log, :user, :rating, :sent)
                ON CONFLICT (log_id, user_name) DO UPDATE
                SET rating = EXCLUDED.rating, sent_to_genie = EXCLUDED.sent_to_genie, created_at = now()"""),
                {"log": answer.log_id, "user": user, "rating": 1 if positive else -1, "sent": sent})

    def _logged(self, user: str, result: Answer | Failure, started: float) -> Answer | Failure:
        answered = isinstance(result, Answer)
        try:
            with self.db.transaction("assistant_log") as conn:
                result.log_id = conn.execute(text(f"""
                    INSERT INTO {self.t.assistant_log} (user_name, question, source, sql_text, duration_ms, cached,
                                                        outcome, row_count, error, conversation_id, message_id)
                    VALUES (:user, :question, :source, :sql, :ms, :cached, :outcome, :rows, :error, :conv, :msg)
                    RETURNING log_id"""), {
                    "user": user, "question": result.question[:MAX_QUESTION], "source": result.source,
                    "sql": result.sql,
                    "ms": int((time.monotonic() - started) * 1000), "cached": answered and result.cached,
                    "outcome": "answered" if answered else result.outcome,
                    "rows": result.row_count if answered else None,
                    "error": None if answered else result.message,
                    "conv": getattr(result, "conversation_id", None), "msg": getattr(result, "message_id", None),
                }).scalar()
        except AppError as exc:  # an unlogged answer is still an answer
            log.warning("assistant log not written: %s", exc.detail or exc.message)
        return result


def download(answer: Answer, summary: str, kind: str) -> bytes:
    """The result with its question, SQL and summary, as CSV or as an Excel workbook."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    notes = [("Question", answer.question), ("Summary", summary or "(no summary)"), ("SQL", answer.sql or ""),
             ("Rows", f"{answer.row_count:,}{' (cut at the row limit)' if answer.truncated else ''}"),
             ("Generated", stamp)]
    result = safe_frame(answer.frame)             # no cell may start a formula in a spreadsheet
    if kind == "csv":
        header = "".join(f"# {label}: {' '.join(str(value).split())}\n" for label, value in notes)
        return (header + result.to_csv(index=False, lineterminator="\r\n")).encode("utf-8")
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as workbook:
        result.to_excel(workbook, sheet_name="Result", index=False)
        safe_frame(pd.DataFrame(notes, columns=["", "value"])).to_excel(workbook, sheet_name="Summary", index=False)
    return buffer.getvalue()


# -- the shared cache's form of an answer ---------------------------------------------------

_KEPT = ("source", "sql", "text", "row_count", "truncated", "size_note", "suggested", "conversation_id",
         "message_id", "summary", "unusual", "follow_up_questions")


def _cached_form(answer: Answer) -> dict:
    """What any process needs to show the answer again (not who asked, nor what it cost)."""
    return {"question": answer.question, "frame": snapshot(answer.frame),
            **{name: getattr(answer, name) for name in _KEPT}}


def _from_cached(data: dict) -> Answer:
    unusual = data.get("unusual")
    return Answer(data["question"], frame=from_snapshot(data["frame"]),
                  **{**{name: data.get(name) for name in _KEPT}, "unusual": tuple(unusual) if unusual else None,
                     "suggested": list(data.get("suggested") or []), "text": data.get("text") or "",
                     "size_note": data.get("size_note") or ""})
