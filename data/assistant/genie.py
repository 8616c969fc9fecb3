"""Databricks Genie through the SDK: ask, follow up, watch the status, fetch the result.

The SDK's own waiter only returns on COMPLETED or FAILED (it polls CANCELLED and
QUERY_RESULT_EXPIRED messages until its 20-minute timeout), so we poll `get_message` ourselves,
report each status as it changes, stop on a cancel or our own deadline, and re-run an expired
result once. Genie allows about five questions a minute per workspace: `budget.RateLimiter` queues
questions for the app's one budget instead of letting them fail.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import pandas as pd

from ..errors import AppError, Category, classify
from .deadline import before

if TYPE_CHECKING:
    from .budget import RateLimiter

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "QUERY_RESULT_EXPIRED"}
# What each Genie status means to the person waiting.
STEPS = {"SUBMITTED": "understanding", "FETCHING_METADATA": "understanding", "FILTERING_CONTEXT": "understanding",
         "ASKING_AI": "writing", "PENDING_WAREHOUSE": "running", "EXECUTING_QUERY": "running",
         "COMPLETED": "done", "FAILED": "failed", "CANCELLED": "failed", "QUERY_RESULT_EXPIRED": "running"}
_INTEGER = {"INT", "LONG", "SHORT", "BYTE", "BIGINT", "SMALLINT", "TINYINT", "INTEGER"}
_FLOAT = {"DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC"}


class Cancelled(Exception):
    """The person stopped the question."""


@dataclass
class GenieReply:
    conversation_id: str
    message_id: str
    status: str
    text: str = ""
    sql: str | None = None
    description: str = ""
    attachment_id: str | None = None
    frame: pd.DataFrame | None = None
    row_count: int | None = None
    truncated: bool = False
    suggested: list[str] = field(default_factory=list)
    error: str | None = None


def frame_from_statement(response) -> tuple[pd.DataFrame, bool, int]:
    """A Genie query result (a SQL StatementResponse) as a typed DataFrame, truncated?, total rows."""
    statement = response.statement_response
    manifest = statement.manifest if statement else None
    columns = manifest.schema.columns if manifest and manifest.schema and manifest.schema.columns else []
    rows = statement.result.data_array if statement and statement.result and statement.result.data_array else []
    frame = pd.DataFrame(rows, columns=[c.name for c in columns]) if columns else pd.DataFrame(rows)
    for column in columns:
        kind = (column.type_name.value if column.type_name else "STRING").upper()
        if kind in _INTEGER:
            frame[column.name] = pd.to_numeric(frame[column.name], errors="coerce").astype("Int64")
        elif kind in _FLOAT:
            frame[column.name] = pd.to_numeric(frame[column.name], errors="coerce").astype(float)
        elif kind in ("DATE", "TIMESTAMP", "TIMESTAMP_NTZ"):
            frame[column.name] = pd.to_datetime(frame[column.name], errors="coerce")
        elif kind == "BOOLEAN":
            frame[column.name] = frame[column.name].map({"true": True, "false": False})
    truncated = bool(manifest.truncated) if manifest and manifest.truncated is not None else False
    total = manifest.total_row_count if manifest and manifest.total_row_count is not None else len(frame)
    return frame, truncated, int(total)


class Genie:
    def __init__(self, workspace, space_id: str, limiter: RateLimiter, *, first_poll: float = 0.3,
                 max_poll: float = 2.0):
        self.w, self.space_id, self.limiter = workspace, space_id, limiter
        self.first_poll, self.max_poll = first_poll, max_poll

    def ask(self, question: str, conversation_id: str | None, *, on_status: Callable[[str], None],
            on_wait: Callable[[int, float], None], cancel: threading.Event, deadline: float) -> GenieReply:
        self.limiter.acquire(on_wait, cancel, deadline)
        genie = self.w.genie
        started = self._call("Genie did not accept the question", deadline, lambda: genie.create_message(
            self.space_id, conversation_id, question) if conversation_id else genie.start_conversation(
            self.space_id, question))
        on_status("SUBMITTED")
        message = self._poll(started.conversation_id, started.message_id, on_status, cancel, deadline)
        reply = self._reply(message, deadline)
        if reply.status == "QUERY_RESULT_EXPIRED" and reply.attachment_id:
            on_status("EXECUTING_QUERY")
            self._rerun(reply, deadline)
        return reply

    @staticmethod
    def _call(what: str, deadline: float, call: Callable):
        """One SDK call, ended by the question's deadline; failures in the app's words."""
        try:
            return before(deadline, call, what="Genie did not finish in time.")
        except AppError:
            raise
        except Exception as exc:
            raise _upstream(what, exc) from exc

    def _poll(self, conversation_id: str, message_id: str, on_status, cancel: threading.Event, deadline: float):
        delay, last = self.first_poll, None
        while True:
            if cancel.is_set():
                raise Cancelled()
            if time.monotonic() > deadline:
                raise AppError("Genie did not finish in time.", category=Category.TIMEOUT)
            message = self._call("Genie stopped answering", deadline,
                                 lambda: self.w.genie.get_message(self.space_id, conversation_id, message_id))
            status = message.status.value if message.status else "SUBMITTED"
            if status != last:
                on_status(status)
                last = status
            if status in TERMINAL:
                return message
            if cancel.wait(min(delay, max(0.0, deadline - time.monotonic()))):
                raise Cancelled()
            delay = min(delay * 1.5, self.max_poll)

    def _reply(self, message, deadline: float) -> GenieReply:
        status = message.status.value if message.status else "FAILED"
        reply = GenieReply(message.conversation_id, message.message_id or message.id, status)
        for attachment in message.attachments or []:
            if attachment.text and attachment.text.content:
                reply.text = (reply.text + "\n\n" + attachment.text.content).strip()
            if attachment.query:
                reply.sql = attachment.query.query
                reply.description = attachment.query.description or ""
                reply.attachment_id = attachment.attachment_id
                meta = attachment.query.query_result_metadata
                if meta is not None:
                    reply.row_count = meta.row_count
                    reply.truncated = bool(meta.is_truncated)
            if attachment.suggested_questions and attachment.suggested_questions.questions:
                reply.suggested = list(attachment.suggested_questions.questions)
        if message.error is not None:
            reply.error = message.error.error or (message.error.type.value if message.error.type else "error")
        if status == "COMPLETED" and reply.attachment_id:
            result = self._call("Genie's result could not be fetched", deadline,
                                lambda: self.w.genie.get_message_attachment_query_result(
                                    self.space_id, reply.conversation_id, reply.message_id, reply.attachment_id))
            reply.frame, truncated, total = frame_from_statement(result)
            reply.truncated = reply.truncated or truncated
            reply.row_count = total if reply.row_count is None else reply.row_count
        return reply

    def _rerun(self, reply: GenieReply, deadline: float) -> None:
        """An expired result is run again once (Genie keeps results for a limited time)."""
        result = self._call("Genie could not run the expired query again", deadline,
                            lambda: self.w.genie.execute_message_attachment_query(
                                self.space_id, reply.conversation_id, reply.message_id, reply.attachment_id))
        reply.frame, reply.truncated, reply.row_count = frame_from_statement(result)
        reply.status = "COMPLETED"

    def feedback(self, conversation_id: str, message_id: str, positive: bool) -> None:
        from databricks.sdk.service.dashboards import GenieFeedbackRating
        rating = GenieFeedbackRating.POSITIVE if positive else GenieFeedbackRating.NEGATIVE
        self.w.genie.send_message_feedback(self.space_id, conversation_id, message_id, rating)


def _upstream(what: str, exc: Exception) -> AppError:
    error = classify(exc)
    if error.category in (Category.CONFIGURATION, Category.PERMISSION, Category.AUTHENTICATION):
        return AppError(f"{what}: {error.message}", category=error.category, detail=error.detail)
    if "429" in str(exc) or type(exc).__name__ == "TooManyRequests":
        return AppError("Genie is busy (too many questions at once); ask again in a minute.",
                        category=Category.UPSTREAM, detail=str(exc))
    return AppError(f"{what}.", category=Category.UPSTREAM, detail=error.detail or str(exc))
