"""The Assistant workspace as components: what a person sees in the chat after asking, without a
browser. Genie and Claude are the fake assistant_workspace, reached through the real SDK."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import panel as pn
import pytest

from dashboard.assistant import AssistantState, AssistantView
from dashboard.assistant.answer import QuestionBar
from dashboard.state import AppState
from data.assistant import build_assistant
from data.backend import Backend
from data.settings import load_settings

from .fake_workspace import SPACE_ID
from .helpers import page_text
from .conftest import make_assistant

USER = "analyst@example.com"


def make_view(assistant) -> AssistantView:
    view = AssistantView(state=AssistantState(AppState(user=USER), assistant))
    view.__panel__()
    return view


def ask(view: AssistantView, question: str) -> list:
    """Send a question as the person would and wait for the whole answer; the chat's messages."""
    async def run():
        view.chat.send(question, user=USER, respond=False)
        await view.respond(question, USER, view.chat)
    # A thread of its own: Playwright's sync API may hold an event loop in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)
    return list(view.chat.objects)


def components(message, kind) -> list:
    return [c for c in message.select(kind)]


def texts(objects) -> str:
    """Every text a person can read in these messages: panes, alerts, titles, button labels and
    the questions offered as buttons."""
    return page_text(objects)


def test_an_answer_shows_steps_sql_table_chart_summary_and_follow_ups(db, tables, assistant_workspace):  
    view = make_view(make_assistant(db, tables))
    messages = ask(view, "Which cities have the most viewers?")
    answer = messages[-1]
    tables_shown = [t.object for t in components(answer, pn.pane.HTML) if "<table class='result'>" in (t.object or "")]
    assert len(tables_shown) == 1 and tables_shown[0].count("<tr>") == 11, "ten rows under a header: a plain table"
    assert len(components(answer, pn.pane.Bokeh)) == 1, "city and number: a bar chart"
    shown = texts([answer])
    assert "10 rows · Genie" in shown and "Summary: the result has 10 rows" in shown
    assert "SELECT city, total_viewers" in shown, "the SQL is in the (collapsed) card"
    assert "Which city converts best?" in shown, "Claude's follow-ups are buttons"
    steps = [c.object for c in answer.select(pn.pane.HTML) if "answer-steps" in c.css_classes]
    assert len(steps) == 1, "Genie's steps head the reply"
    assert "✓ Understanding the question" in steps[0] and "✓ Writing SQL" in steps[0]
    assert "✓ Running the query" in steps[0] and "…" not in steps[0] and "✗" not in steps[0]


def unusual_notes(message) -> list:
    return [c for c in message.select(pn.pane.HTML) if "answer-unusual" in c.css_classes]


def test_claude_points_out_what_is_unusual_only_when_something_is(db, tables, assistant_workspace):
    view = make_view(make_assistant(db, tables))
    note = unusual_notes(ask(view, "Which cities have the most viewers?")[-1])
    assert len(note) == 1 and note[0].visible
    assert "Worth a look" in note[0].object and "medium confidence" in note[0].object
    assert "twice the next city" in note[0].object
    assistant_workspace.unusual_note = None                  # nothing stands out: nothing is shown
    note = unusual_notes(ask(view, "Which cities have the fewest viewers?")[-1])
    assert len(note) == 1 and not note[0].visible


def test_an_unusual_note_claude_cannot_give_leaves_the_answer_whole(db, tables, assistant_workspace):
    view = make_view(make_assistant(db, tables))
    assistant_workspace.fail("/serving-endpoints/", 500, times=100)
    answer = ask(view, "Which cities have the most viewers?")[-1]
    assert not unusual_notes(answer)[0].visible
    assert "10 rows · Genie" in texts([answer])


def test_a_follow_up_button_asks_in_the_same_conversation(db, tables, assistant_workspace):  
    view = make_view(make_assistant(db, tables))
    ask(view, "Which cities have the most viewers?")
    ask(view, "Which city converts best?")
    assert len(assistant_workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/start-conversation", "POST")) == 1
    view.new_conversation()
    assert len(view.chat.objects) == 1 and view.state.conversation.genie_id is None, "only the welcome is left"


def test_a_failure_shows_a_message_and_rephrasings(db, tables, assistant_workspace):  
    assistant_workspace.script("unicorns", statuses=("ASKING_AI", "FAILED"), error="No table matches 'unicorns'")
    view = make_view(make_assistant(db, tables))
    shown = texts(ask(view, "How many unicorns were sold?")[-1:])
    assert "Genie could not answer: No table matches 'unicorns'." in shown
    assert "Which 5 cities have the highest conversion?" in shown


def test_thumbs_are_stored(db, tables, assistant_workspace):  
    view = make_view(make_assistant(db, tables))
    answer = ask(view, "Which cities have the most viewers?")[-1]
    bar = next(b for b in answer.select(QuestionBar) if b.votes)
    bar._handle_msg({"vote": True})                 # what the browser sends for "Helpful"
    assert db.scalar("r", f"SELECT rating FROM {tables.assistant_feedback}") == 1
    assert bar.voted == "Thanks, noted."
    bar._handle_msg({"vote": False})
    assert db.scalar("n", f"SELECT count(*) FROM {tables.assistant_feedback}") == 1, "one vote per answer"


def test_a_vote_that_cannot_be_stored_says_why_in_the_app_s_words(db, tables, assistant_workspace, monkeypatch):
    import psycopg
    assistant = make_assistant(db, tables)
    view = make_view(assistant)
    answer = ask(view, "Which cities have the most viewers?")[-1]
    bar = next(b for b in answer.select(QuestionBar) if b.votes)

    def database_away(*_args):
        raise psycopg.OperationalError("connection to server at 10.0.0.7 failed: password=... ")
    monkeypatch.setattr(assistant, "feedback", database_away)
    bar._handle_msg({"vote": True})
    assert bar.voted.startswith("Not saved: The database") and "10.0.0.7" not in bar.voted


def test_nothing_configured_names_the_settings_and_offers_sql(db, tables, clean_env):
    settings = load_settings({})
    assistant = build_assistant(settings, Backend(settings, db, tables, credentials=None, host="", user=""))
    view = make_view(assistant)
    welcome = texts(view.chat.objects[:1])
    assert "GENIE_SPACE_ID" in welcome and "DATABRICKS_HOST" in welcome
    assert "/sql SELECT city" in welcome
    shown = texts(ask(view, "/sql SELECT count(*) AS n FROM orders")[-1:])
    assert "1 row · your SQL" in shown


@pytest.mark.parametrize("sql, reason", [
    ("/sql DELETE FROM orders", "Only SELECT queries are allowed, not DELETE."),
    ("/sql SELECT * FROM pg_catalog.pg_authid", "is not one of the tables the assistant may read"),
    ("/sql SELECT pg_sleep(5) FROM orders", "pg_sleep() is not allowed"),
])
def test_bad_sql_is_refused_in_the_chat_and_nothing_runs(db, tables, clean_env, sql, reason):
    settings = load_settings({})
    view = make_view(build_assistant(settings, Backend(settings, db, tables, credentials=None, host="", user="")))
    assert reason in texts(ask(view, sql)[-1:])


def test_a_large_result_is_paged_and_a_small_one_is_a_plain_table():
    import pandas as pd

    from dashboard.assistant.answer import HTML_TABLE_ROWS, result_table
    small = result_table(pd.DataFrame({"city": ["Agra", "<b>Oslo</b>"], "viewers": [1200, 3]}))
    assert isinstance(small, pn.pane.HTML) and "1,200" in small.object and "&lt;b&gt;Oslo" in small.object
    large = result_table(pd.DataFrame({"n": range(HTML_TABLE_ROWS + 1)}))
    assert isinstance(large, pn.widgets.Tabulator) and large.page_size == 10


def test_a_result_gets_the_chart_its_columns_fit():
    from datetime import date

    from bokeh.models import DatetimeAxis, HBar, Line, Scatter

    from dashboard.assistant.charts import MAX_BARS, answer_chart

    def glyphs(plot):
        return {type(r.glyph) for r in plot.renderers}
    by_day = pd.DataFrame({"day": [date(2026, 11, d) for d in (3, 1, 2)], "orders": [5, 7, None]})
    line = answer_chart(by_day, "Orders by day")
    assert glyphs(line) == {Line, Scatter} and isinstance(line.xaxis[0], DatetimeAxis)
    assert list(line.renderers[0].data_source.data["orders"]) == [7, 5], "in date order, the gap left out"
    cities = pd.DataFrame({"city": [f"City {i}" for i in range(40)], "viewers": range(40)})
    bars = answer_chart(cities, "Viewers by city")
    assert glyphs(bars) == {HBar} and bars.title.text == f"Viewers by city (top {MAX_BARS})"
    assert bars.y_range.factors[-1] == "City 39", "the largest bar on top"
    assert (bars.x_range.start, bars.x_range.end) == (0, 39 * 1.05), "counts start at zero"
    assert glyphs(answer_chart(pd.DataFrame({"price": [1.0, 2.0], "rating": [3, 4]}), "q")) == {Scatter}
    assert answer_chart(pd.DataFrame({"name": ["a", "b"]}), "q") is None, "nothing to plot: the table alone"
    assert answer_chart(pd.DataFrame({"city": [], "viewers": []}), "q") is None
