"""What the assistant costs, from its log: questions sent to Genie against the per-minute budget,
answers served from the cache, and Claude's tokens per answer, per day in the business time zone."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import text

from ..cache import Caches, cached
from ..database import Database
from ..tables import Tables


@dataclass
class Usage:
    """Claude's tokens for one answer (its summary, follow-ups, note, or the SQL it wrote)."""

    prompt: int = 0
    completion: int = 0
    calls: int = 0

    def add(self, usage: dict | object | None) -> None:
        """Add one response's `usage` (a dict or the SDK's object); responses without one add a call."""
        self.calls += 1
        if usage is None:
            return
        read = usage.get if isinstance(usage, dict) else lambda name: getattr(usage, name, None)
        self.prompt += int(read("prompt_tokens") or 0)
        self.completion += int(read("completion_tokens") or 0)

    @property
    def total(self) -> int:
        return self.prompt + self.completion


@dataclass
class Costs:
    genie_last_minute: int
    budget_per_minute: int
    days: pd.DataFrame = field(default_factory=pd.DataFrame)   # day, questions, to_genie, from_cache, ...
    today: dict | None = None                                    # today's row of `days`, if any question


class AssistantCosts:
    def __init__(self, db: Database, tables: Tables, *, timezone: str = "UTC", budget_per_minute: int = 5):
        self.db, self.t, self.timezone, self.budget = db, tables, timezone, budget_per_minute
        self._caches = Caches()

    @cached("assistant_costs", 10)
    def recent(self, days: int = 7) -> Costs:
        """The last `days` days, newest first (read at most every 10 s per process)."""
        frame = self.db.frame("assistant_costs", f"""
            SELECT (asked_at AT TIME ZONE :tz)::date AS day,
                   count(*) AS questions,
                   count(*) FILTER (WHERE source = 'genie' AND NOT cached) AS to_genie,
                   count(*) FILTER (WHERE cached) AS from_cache,
                   coalesce(sum(claude_prompt_tokens + claude_completion_tokens), 0)::bigint AS claude_tokens,
                   count(*) FILTER (WHERE claude_prompt_tokens + claude_completion_tokens > 0) AS with_claude
            FROM {self.t.assistant_log}
            WHERE asked_at >= date_trunc('day', now() AT TIME ZONE :tz) AT TIME ZONE :tz
                              - make_interval(days => :days - 1)
            GROUP BY 1 ORDER BY 1 DESC""", {"tz": self.timezone, "days": days})
        frame["cache_share"] = frame["from_cache"] / frame["questions"].where(frame["questions"] > 0)
        frame["tokens_per_answer"] = frame["claude_tokens"] / frame["with_claude"].where(frame["with_claude"] > 0)
        now = self.db.rows("genie_last_minute", f"""
            SELECT (SELECT count(*) FROM {self.t.assistant_log}
                    WHERE asked_at > now() - interval '1 minute' AND source = 'genie' AND NOT cached) AS sent,
                   (now() AT TIME ZONE :tz)::date AS today""", {"tz": self.timezone})[0]
        today = frame[frame["day"] == now["today"]]
        return Costs(int(now["sent"]), self.budget, frame, today.iloc[0].to_dict() if len(today) else None)


def record_usage(db: Database, tables: Tables, log_id: int | None, usage: Usage) -> None:
    """Add Claude's tokens for one answer to its row of the assistant log."""
    if log_id is None or not usage.total:
        return
    with db.transaction("assistant_tokens") as conn:
        conn.execute(text(f"""
            UPDATE {tables.assistant_log}
            SET claude_prompt_tokens = claude_prompt_tokens + :prompt,
                claude_completion_tokens = claude_completion_tokens + :completion
            WHERE log_id = :id"""), {"prompt": usage.prompt, "completion": usage.completion, "id": log_id})
