"""Coming back to a conversation, and sharing an answer, as people do it in the Assistant workspace
(components, no browser; the assistant runs /sql queries so no Databricks is needed)."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from dashboard.assistant import AssistantState, AssistantView
from dashboard.assistant.answer import AnswerDetails, QuestionBar
from dashboard.state import AppState
from data.assistant import Assistant
from data.assistant.guard import SqlGuard
from data.assistant.history import History

from .helpers import page_text
from .test_assistant_views import ask

ANA, BEN = "ana@example.com", "ben@example.com"
TOP_CITIES = "/sql SELECT city, total_viewers FROM city_investment ORDER BY total_viewers DESC LIMIT 3"


@pytest.fixture
def history(db, tables):
    return History(db, tables)


def open_chat(db, tables, history, user=ANA, **state) -> AssistantView:
    assistant = Assistant(db, tables, SqlGuard(db, tables), missing=["GENIE_SPACE_ID"])
    view = AssistantView(state=AssistantState(AppState(user=user), assistant, None, history, **state))
    view.__panel__()
    return view


def shown(view) -> str:
    return page_text(view.chat.objects)


def test_reloading_brings_back_the_conversation_with_when_each_result_was_taken(db, tables, history):
    first = open_chat(db, tables, history)
    ask(first, TOP_CITIES)
    ask(first, "/sql SELECT nothing FROM nowhere")           # refused: kept with its reason
    again = open_chat(db, tables, history)                   # the page reloaded
    text = shown(again)
    assert TOP_CITIES in text and "3 rows · your SQL · result taken" in text
    refused = history.turns(first.state.stored, ANA)[1]
    assert refused.outcome == "refused" and refused.message and refused.message in text
    details = [d for d in again.chat.select(AnswerDetails) if d.sql]
    assert details and details[0].link is not None, "a kept answer has its link"
    assert again.state.stored == first.state.stored, "asking again continues the same conversation"
    ask(again, "/sql SELECT count(*) AS n FROM city_investment")
    assert [t.question for t in history.turns(first.state.stored, ANA)][-1].startswith("/sql SELECT count(*)")


def test_someone_else_starts_with_an_empty_chat(db, tables, history):
    ask(open_chat(db, tables, history), TOP_CITIES)
    assert TOP_CITIES not in shown(open_chat(db, tables, history, user=BEN))


def test_run_again_asks_afresh(db, tables, history):
    ask(open_chat(db, tables, history), TOP_CITIES)
    view = open_chat(db, tables, history)
    asked = []
    view._ask = asked.append
    again = next(b for b in view.chat.select(lambda c: getattr(c, "label", None) == "Run again"))
    again.clicks += 1
    assert asked == [TOP_CITIES] and view.state.fresh


def test_earlier_conversations_can_be_reopened_and_deleted(db, tables, history):
    view = open_chat(db, tables, history)
    ask(view, TOP_CITIES)
    older = view.state.stored
    view.new_conversation()
    ask(view, "/sql SELECT count(*) AS n FROM city_investment")
    assert view.state.stored != older
    listed = [c.conversation_id for c in view.state.conversations()]
    assert listed == [view.state.stored, older], "the latest first"
    view.reopen(older)
    assert TOP_CITIES in shown(view) and "count(*)" not in shown(view)
    assert view.state.delete(older)
    assert [c.conversation_id for c in view.state.conversations()] != [] and older not in [
        c.conversation_id for c in view.state.conversations()]
    view.reopen(older)                                       # gone: told, the chat stays as it was
    assert view.state.history_notice == "That conversation is not yours, or it was deleted."


def test_a_shared_link_shows_the_answer_read_only_to_a_colleague(db, tables, history):
    author = open_chat(db, tables, history)
    ask(author, TOP_CITIES)
    turn = history.turns(author.state.stored, ANA)[0].turn_id
    colleague = open_chat(db, tables, history, user=BEN, answer=turn)
    text = shown(colleague)
    assert f"Shared answer, asked by {ANA}." in text and "3 rows · your SQL · result taken" in text
    shared = colleague.chat.objects[-1]
    assert not any(bar.votes for bar in shared.select(QuestionBar)), "read-only: no thumbs"
    assert colleague.state.stored is None, "the colleague's own chat is not the author's conversation"


def test_an_answer_asked_with_someone_s_permissions_shows_only_its_question(db, tables, history):
    conversation = history.start(ANA, "q")
    author = open_chat(db, tables, history)
    author.state.assistant.acting_as = ANA                    # asked on ANA's behalf, with her token
    author.state.stored = conversation
    ask(author, TOP_CITIES)
    turn = history.turns(conversation, ANA)[-1].turn_id
    colleague = open_chat(db, tables, history, user=BEN, answer=turn)
    text = shown(colleague)
    assert "author's own data permissions" in text and TOP_CITIES in text
    assert "Phuket" not in text, "none of the result"
    assert "Phuket" in shown(open_chat(db, tables, history, answer=turn)), "the author sees it"


def test_a_link_to_a_deleted_answer_says_so(db, tables, history):
    view = open_chat(db, tables, history, user=BEN, answer=10**9)
    assert "There is no such answer" in shown(view)


def test_an_answer_that_cannot_be_kept_is_still_shown_and_the_person_is_told(db, tables, history, monkeypatch):
    def unavailable(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("connection to server at 10.1.2.3 failed"))
    monkeypatch.setattr(history, "record", unavailable)
    view = open_chat(db, tables, history)
    ask(view, TOP_CITIES)
    assert "3 rows · your SQL" in shown(view)
    assert view.state.history_notice.startswith("This answer is not kept in your history")
    assert "10.1.2.3" not in view.state.history_notice


def test_a_long_conversation_comes_back_with_its_latest_questions(db, tables, history):
    from dashboard.assistant.views import REPLAYED_TURNS
    first = open_chat(db, tables, history)
    for n in range(REPLAYED_TURNS + 2):
        ask(first, f"/sql SELECT {n} AS n")
    again = open_chat(db, tables, history)
    text = shown(again)
    assert "2 earlier questions of this conversation are kept but not shown" in text
    assert "/sql SELECT 1 AS n" not in text and f"/sql SELECT {REPLAYED_TURNS + 1} AS n" in text
