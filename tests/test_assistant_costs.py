"""What the assistant costs: Claude's tokens as the serving endpoint reports them, counted per answer,
and the System workspace's figures per day (questions, Genie's last minute against the budget, cache)."""
from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import text

from dashboard.system import SystemState, SystemView
from data.assistant.costs import AssistantCosts, Usage, record_usage
from data.backend import Backend
from data.credentials import StaticPassword
from data.health import Monitor
from data.settings import load_settings

from .conftest import make_assistant
from .helpers import page_text
from .test_assistant_views import ask, make_view


def test_usage_adds_what_each_response_reports():
    usage = Usage()
    usage.add({"prompt_tokens": 100, "completion_tokens": 20})
    usage.add(SimpleNamespace(prompt_tokens=10, completion_tokens=5, total_tokens=15))   # the SDK's object
    usage.add(None)                                     # a response without usage: a call, no tokens
    assert (usage.prompt, usage.completion, usage.total, usage.calls) == (110, 25, 135, 3)


def log_row(db, tables, **values) -> int:
    row = {"user": "ana", "question": "q", "source": "genie", "cached": False, "outcome": "answered",
           "ago": "0 seconds", **values}
    with db.transaction("log") as conn:
        return conn.execute(text(f"""
            INSERT INTO {tables.assistant_log} (user_name, question, source, duration_ms, cached, outcome, asked_at)
            VALUES (:user, :question, :source, 1, :cached, :outcome, now() - CAST(:ago AS interval))
            RETURNING log_id"""), row).scalar()


def test_costs_per_day_and_genie_s_last_minute(db, tables):
    answered = log_row(db, tables)
    log_row(db, tables, cached=True)
    log_row(db, tables, source="sql")
    log_row(db, tables, ago="2 minutes")
    log_row(db, tables, ago="2 days")
    record_usage(db, tables, answered, Usage(prompt=300, completion=100))
    record_usage(db, tables, answered, Usage(prompt=50, completion=50))      # added, not replaced
    record_usage(db, tables, None, Usage(prompt=1))                           # no log row: nothing
    costs = AssistantCosts(db, tables, budget_per_minute=5).recent()
    assert costs.genie_last_minute == 1 and costs.budget_per_minute == 5, "sent to Genie, not cached, this minute"
    today = costs.today
    assert (today["questions"], today["to_genie"], today["from_cache"]) == (4, 2, 1)
    assert today["cache_share"] == 0.25
    assert today["claude_tokens"] == 500 and today["tokens_per_answer"] == 500
    assert len(costs.days) == 2 and costs.days.iloc[0]["day"] > costs.days.iloc[1]["day"], "newest first"


def test_an_answer_counts_claude_s_tokens_for_its_summary_note_and_follow_ups(db, tables, assistant_workspace):
    view = make_view(make_assistant(db, tables))
    ask(view, "Which cities have the most viewers?")
    tokens = db.rows("tokens", f"""SELECT claude_prompt_tokens AS prompt, claude_completion_tokens AS completion
                                   FROM {tables.assistant_log} ORDER BY log_id DESC LIMIT 1""")[0]
    # the streamed summary reports 100 prompt tokens; follow-ups and the note 10 each
    assert tokens["prompt"] == 120 and tokens["completion"] > 0


def test_the_system_workspace_shows_the_assistant_s_costs(db, tables):
    answered = log_row(db, tables)
    record_usage(db, tables, answered, Usage(prompt=700, completion=300))
    settings = load_settings({})
    backend = Backend(settings, db, tables, StaticPassword("secret"), "localhost", "app")
    view = SystemView(SystemState(Monitor(backend), costs=AssistantCosts(db, tables, budget_per_minute=5)))
    shown = page_text([view.__panel__()])
    assert "What the assistant costs" in shown
    assert "1 of 5" in view.genie.pane.object and "1,000" in view.tokens.pane.object
    assert view.costs_table.value.iloc[0]["claude_tokens"] == 1000
