"""Insights as a person meets them in the Assistant workspace: in the chat's first message, as a new
message while the chat is open, and in the Insights tab, where they can be asked about, dismissed
and checked for again."""
from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from dashboard.assistant import AssistantState, AssistantView
from dashboard.assistant.insights import InsightList, InsightsView
from dashboard.state import AppState
from data.assistant import Assistant
from data.assistant.guard import SqlGuard
from data.changes import ChangeFeed
from data.demo.marketplace import planted_anomaly_city
from data.insights import CHANNEL, Insights

from .test_insights_data import plant_orders

USER = "analyst@example.com"


@pytest.fixture
def insights(db, tables):
    return Insights(db, tables, feed=ChangeFeed(db, CHANNEL))     # announced by hand: no thread


def open_assistant(db, tables, insights, user: str = USER) -> AssistantView:
    sql_only = Assistant(db, tables, SqlGuard(db, tables), missing=["GENIE_SPACE_ID"])
    view = AssistantView(state=AssistantState(AppState(user=user), sql_only, insights))
    view.__panel__()
    return view


def lists(message) -> list[InsightList]:
    return list(message.select(InsightList))


def test_the_chat_opens_with_the_newest_insights(db, tables, insights):
    insights.run_if_due(force=True)
    insights.feed.announce()
    view = open_assistant(db, tables, insights)
    shown = lists(view.chat.objects[0])
    assert len(shown) == 1
    sentences = [item["sentence"] for item in shown[0].items]
    assert 1 <= len(sentences) <= 3
    assert sentences == [i.sentence for i in insights.latest()[:3]], "newest first"
    assert any(planted_anomaly_city() in s for s in [i.sentence for i in insights.latest()])


def test_asking_about_an_insight_asks_its_question_in_the_chat(db, tables, insights):
    insights.run_if_due(force=True)
    insights.feed.announce()
    view = open_assistant(db, tables, insights)
    asked = []
    view._ask = asked.append
    view.tabs.active = 1                                    # on the Insights tab
    item = lists(view.chat.objects[0])[0].items[0]
    lists(view.chat.objects[0])[0]._handle_msg({"ask": item["id"]})
    question = next(i.question for i in insights.latest() if i.insight_id == item["id"])
    assert asked == [question] and view.tabs.active == 0, "the chat is shown with the question asked"
    lists(view.chat.objects[0])[0]._handle_msg({"ask": 10**9})    # an id it never showed: nothing
    assert asked == [question]


def test_an_insight_found_while_the_chat_is_open_becomes_a_message(db, tables, insights):
    view = open_assistant(db, tables, insights)
    before = len(view.chat.objects)
    plant_orders(db, tables, days_back=0, count=200)
    new = insights.run_if_due(force=True).new
    insights.feed.announce()                                # what the NOTIFY does in a served app
    assert len(view.chat.objects) == before + 1
    message = view.chat.objects[-1]
    assert message.user == "Insights"
    assert {item["id"] for item in lists(message)[0].items} == set(new)
    insights.feed.announce()                                # told once
    assert len(view.chat.objects) == before + 1


def test_the_insights_tab_lists_them_and_a_dismissal_says_who(db, tables, insights):
    insights.run_if_due(force=True)
    insights.feed.announce()
    view = open_assistant(db, tables, insights)
    tab = InsightsView(view._ask_from_insight, state=view.state)
    tab.__panel__()
    ids = [item["id"] for item in tab.list.items]
    assert ids and tab.list.dismissable and "Last checked" in tab.status.object
    tab.list._handle_msg({"dismiss": ids[0]})
    assert ids[0] not in [item["id"] for item in tab.list.items]
    view.state.show_dismissed = True
    dismissed = next(item for item in tab.list.items if item["id"] == ids[0])
    assert dismissed["dismissed"].startswith(f"Dismissed by {USER} at ")
    # a colleague who had the same list open dismisses it again: told, nothing changes
    colleague = open_assistant(db, tables, insights, user="ben@example.com")
    colleague.state.dismiss(ids[0])
    assert colleague.state.insight_notice == "Someone else dismissed it already."
    assert db.scalar("who", f"SELECT dismissed_by FROM {tables.insights} WHERE insight_id = :id",
                     {"id": ids[0]}) == USER


def test_check_now_says_what_it_found(db, tables, insights):
    view = open_assistant(db, tables, insights)
    view.state.check_now()
    assert view.state.insight_notice.startswith("Checked: ") and " new." in view.state.insight_notice
    assert len(view.chat.objects) == 2, "what the check found is told in the chat too"


def test_a_dismissal_the_database_refuses_is_explained_and_changes_nothing(db, tables, insights, monkeypatch):
    insights.run_if_due(force=True)
    insights.feed.announce()
    view = open_assistant(db, tables, insights)

    def unavailable(*_args):
        raise OperationalError("UPDATE", {}, Exception("connection to server at 10.0.0.1 failed"))
    monkeypatch.setattr(insights, "dismiss", unavailable)
    first = insights.latest()[0].insight_id
    view.state.dismiss(first)
    assert view.state.insight_notice.startswith("Not dismissed: ") and "10.0.0.1" not in view.state.insight_notice
    assert first in [i.insight_id for i in insights.recent()]


def test_text_from_the_database_stays_data(db, tables, insights):
    """An insight's sentence reaches the browser as a value set with textContent, never as markup."""
    hostile = '<img src=x onerror="alert(1)"> Orders <b>up</b>'
    with db.transaction("plant") as conn:
        conn.execute(text(f"""
            INSERT INTO {tables.insights} (insight_key, rule, subject, sentence, question, confidence, size)
            VALUES ('test:1', 'orders_pace', 'orders', :s, :s, 0.9999, 100)"""), {"s": hostile})
    insights.feed.announce()
    view = open_assistant(db, tables, insights)
    items = lists(view.chat.objects[0])[0].items
    assert items[0]["sentence"] == hostile
    assert "innerHTML" not in InsightList._esm and "textContent = item.sentence" in InsightList._esm


def test_a_link_opens_the_insights_tab_and_a_missing_tab_is_named(db, tables, insights):
    sql_only = Assistant(db, tables, SqlGuard(db, tables), missing=["GENIE_SPACE_ID"])
    view = AssistantView(state=AssistantState(AppState(user=USER), sql_only, insights, tab="insights"))
    view.__panel__()
    assert view.tabs.labels == ["Chat", "Insights"] and view.tabs.active == 1
    view._ask = lambda question: None
    view._ask_from_insight("Why?")
    assert view.state.tab == "chat" and view.tabs.active == 0, "asking shows the chat"
    app = AppState(user=USER)
    missing = AssistantView(state=AssistantState(app, sql_only, insights, tab="dashboard"))
    missing.__panel__()
    assert missing.state.tab == "chat" and "The Assistant has no dashboard tab here" in app.message
