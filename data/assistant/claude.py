"""Claude on a Databricks serving endpoint (OpenAI-compatible chat), through the SDK.

`serving_endpoints.query(stream=True)` cannot read the event stream, so streaming goes through
`api_client.do(..., raw=True)` and parses the server-sent events here. The tasks the assistant
needs (a business summary, follow-up questions, explaining a failure, writing SQL from the
schema) are methods with their prompts next to them.
"""
from __future__ import annotations

import json
import re
from typing import Iterator

import pandas as pd

from ..errors import AppError, Category, classify
from .costs import Usage

SUMMARY_ROWS = 30


class Claude:
    def __init__(self, workspace, endpoint: str, *, max_tokens: int = 700, temperature: float = 0.2):
        self.w, self.endpoint, self.max_tokens, self.temperature = workspace, endpoint, max_tokens, temperature

    # -- transport ------------------------------------------------------------------------

    def complete(self, system: str, user: str, *, max_tokens: int | None = None, meter: Usage | None = None) -> str:
        from databricks.sdk.service.serving import ChatMessage, ChatMessageRole
        try:
            response = self.w.serving_endpoints.query(
                self.endpoint, messages=[ChatMessage(role=ChatMessageRole.SYSTEM, content=system),
                                         ChatMessage(role=ChatMessageRole.USER, content=user)],
                max_tokens=max_tokens or self.max_tokens, temperature=self.temperature)
        except Exception as exc:
            raise _upstream(exc) from exc
        if meter is not None:
            meter.add(response.usage)
        choice = response.choices[0] if response.choices else None
        return (choice.message.content if choice and choice.message else choice.text if choice else "") or ""

    def stream(self, system: str, user: str, *, max_tokens: int | None = None,
               meter: Usage | None = None) -> Iterator[str]:
        """Text as it arrives (server-sent events: `data: {choices: [{delta: {content}}]}`); the
        tokens go to `meter` when the stream reports them (an event with `usage`)."""
        body = {"messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
                "max_tokens": max_tokens or self.max_tokens, "temperature": self.temperature, "stream": True}
        try:
            raw = self.w.api_client.do("POST", f"/serving-endpoints/{self.endpoint}/invocations", body=body,
                                       headers={"Accept": "text/event-stream"}, raw=True)["contents"]
        except Exception as exc:
            raise _upstream(exc) from exc
        buffer, usage = "", None
        try:
            while chunk := raw.read(512):
                buffer += chunk.decode("utf-8", errors="replace")
                while "\n" in buffer:
                    line, buffer = buffer.split("\n", 1)
                    piece, usage = _event(line, usage)
                    if piece is None:
                        return
                    if piece:
                        yield piece
            if buffer:
                piece, usage = _event(buffer, usage)
                if piece:
                    yield piece
        finally:
            raw.close()
            if meter is not None:
                meter.add(usage)

    # -- tasks ----------------------------------------------------------------------------

    def summary(self, question: str, frame: pd.DataFrame, sql: str | None, truncated: bool,
                meter: Usage | None = None) -> Iterator[str]:
        system = ("You are a sharp business analyst. Summarise the query result for a busy manager in 2 to 4 "
                  "sentences: the headline figure, the biggest differences, anything surprising. Use the numbers "
                  "given; never invent data. No preamble, no markdown headings.")
        return self.stream(system, _result_prompt(question, frame, sql, truncated), max_tokens=300, meter=meter)

    def follow_ups(self, question: str, frame: pd.DataFrame, meter: Usage | None = None) -> list[str]:
        system = ("Suggest 3 short follow-up questions a business user could ask next about this data, each "
                  "answerable from the same tables. Reply with a JSON array of strings only.")
        return _question_list(self.complete(system, _result_prompt(question, frame, None, False), max_tokens=200,
                                            meter=meter))

    def unusual(self, question: str, frame: pd.DataFrame, meter: Usage | None = None) -> tuple[str, str]:
        """Anything unusual in a result (seed 001's "analyze" step): (what, confidence low|medium|high),
        or ("", "") when nothing stands out."""
        system = ("Point out anything unusual in this query result that a business user should look at: an "
                  "outlier, a sudden change, a value that breaks the pattern. Use only the numbers given. Reply "
                  'as JSON: {"unusual": "one or two sentences", "confidence": "low" | "medium" | "high"}, '
                  'or {"unusual": ""} when nothing stands out.')
        text = self.complete(system, _result_prompt(question, frame, None, False), max_tokens=200, meter=meter)
        try:
            parsed = json.loads(text[text.index("{"): text.rindex("}") + 1])
        except ValueError:
            return "", ""
        what = str(parsed.get("unusual") or "").strip()
        level = str(parsed.get("confidence") or "").strip().lower()
        return (what, level if level in ("low", "medium", "high") else "low") if what else ("", "")

    def explain_failure(self, question: str, problem: str, meter: Usage | None = None) -> tuple[str, list[str]]:
        system = ("A data question could not be answered. In one or two plain sentences, explain why for a "
                  "non-technical user, then suggest 2 or 3 rephrasings more likely to work. Reply as JSON: "
                  '{"explanation": "...", "rephrasings": ["...", "..."]}')
        text = self.complete(system, f"Question: {question}\nWhat went wrong: {problem}", max_tokens=300, meter=meter)
        try:
            parsed = json.loads(text[text.index("{"): text.rindex("}") + 1])
            return str(parsed.get("explanation", "")).strip(), _question_list(json.dumps(parsed.get("rephrasings", [])))
        except ValueError:
            return text.strip(), []

    def write_sql(self, question: str, schema: str, meter: Usage | None = None) -> str:
        system = ("Write one PostgreSQL SELECT query that answers the question using only these tables. "
                  "Use schema-qualified table names. Return only the SQL in a ```sql code block.\n\n" + schema)
        text = self.complete(system, question, max_tokens=500, meter=meter)
        match = re.search(r"```(?:sql)?\s*(.*?)```", text, flags=re.DOTALL | re.IGNORECASE)
        return (match.group(1) if match else text).strip().rstrip(";")


def _event(line: str, usage: dict | None) -> tuple[str | None, dict | None]:
    """The text in one SSE line ('' for other lines, None at the end of the stream), and the usage
    reported so far."""
    line = line.strip()
    if not line.startswith("data:"):
        return "", usage
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None, usage
    try:
        event = json.loads(payload)
    except ValueError:
        return "", usage
    choices = event.get("choices") or [{}]
    delta = choices[0].get("delta") or choices[0].get("message") or {}
    return delta.get("content") or "", event.get("usage") or usage


def _result_prompt(question: str, frame: pd.DataFrame, sql: str | None, truncated: bool) -> str:
    sample = frame.head(SUMMARY_ROWS).to_csv(index=False)
    more = f" (showing the first {SUMMARY_ROWS})" if len(frame) > SUMMARY_ROWS else ""
    cut = " The result was cut at the row limit." if truncated else ""
    return (f"Question: {question}\n" + (f"SQL: {sql}\n" if sql else "") +
            f"Result: {len(frame):,} rows{more}.{cut}\n{sample}")


def _question_list(text: str) -> list[str]:
    try:
        items = json.loads(text[text.index("["): text.rindex("]") + 1])
    except ValueError:
        items = [re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line) for line in text.splitlines()]
    questions = [str(i).strip() for i in items if str(i).strip()]
    return [q for q in questions if len(q) <= 200][:3]


def _upstream(exc: Exception) -> AppError:
    error = classify(exc)
    if error.category is Category.CONFIGURATION:
        return AppError("The Claude serving endpoint was not found; check SERVING_ENDPOINT.",
                        category=Category.CONFIGURATION, detail=error.detail)
    if error.category in (Category.PERMISSION, Category.AUTHENTICATION):
        return AppError("The app may not query the Claude serving endpoint (CAN_QUERY is needed).",
                        category=error.category, detail=error.detail)
    return AppError("Claude did not answer.", category=Category.UPSTREAM, detail=error.detail or str(exc))
