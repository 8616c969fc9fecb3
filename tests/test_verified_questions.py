"""Verified questions: an editor keeps a helpful answer from Genie; a check asks Genie again and says,
per question, whether it wrote the same SQL, other SQL with the same result, a different result, or
nothing; the score is the share that still match."""
from __future__ import annotations

import time

import pandas as pd
import panel as pn
import pytest
from sqlalchemy import text

from data.assistant.verified import VerifiedQuestions, checksum, same_sql
from data.editors import EditorPolicy
from data.errors import PermissionDenied, ValidationError

from .conftest import make_assistant

EDITOR, READER = "ed@example.com", "ann@example.com"
TOP = "SELECT city, total_viewers FROM marketplace.city_investment ORDER BY total_viewers DESC LIMIT 5"
TOP_AGAIN = "SELECT city, total_viewers FROM marketplace.city_investment ORDER BY 2 DESC LIMIT 5"
BOTTOM = "SELECT city, total_viewers FROM marketplace.city_investment ORDER BY total_viewers LIMIT 5"


def helpful(db, tables, question="Top cities?") -> int:
    with db.transaction("log") as conn:
        log_id = conn.execute(text(f"""
            INSERT INTO {tables.assistant_log} (user_name, question, source, duration_ms, outcome)
            VALUES ('ann', :q, 'genie', 1, 'answered') RETURNING log_id"""), {"q": question}).scalar()
        conn.execute(text(f"INSERT INTO {tables.assistant_feedback} (log_id, user_name, rating) "
                          "VALUES (:log, 'ann', 1)"), {"log": log_id})
    return log_id


@pytest.fixture
def verified(db, tables):
    return VerifiedQuestions(db, tables, editors=EditorPolicy((EDITOR,)))


def result(db, sql) -> pd.DataFrame:
    return db.frame("r", sql)


def test_a_checksum_ignores_row_order_but_not_values():
    a = pd.DataFrame({"city": ["A", "B"], "n": [1, 2]})
    assert checksum(a) == checksum(a.iloc[::-1])
    assert checksum(a) != checksum(a.assign(n=[1, 3]))


def test_same_sql_ignores_case_and_spacing():
    assert same_sql("select  city FROM t", "SELECT city\nFROM t")
    assert not same_sql("SELECT city FROM t", "SELECT country FROM t")
    assert not same_sql(None, "SELECT 1")


def test_only_an_editor_may_verify_and_only_a_helpful_answer_from_genie(db, tables, verified):
    frame = result(db, TOP)
    with pytest.raises(PermissionDenied):
        verified.promote(READER, "Top cities?", TOP, frame, source="genie", log_id=helpful(db, tables))
    with pytest.raises(ValidationError, match="Genie"):
        verified.promote(EDITOR, "Top cities?", TOP, frame, source="sql", log_id=helpful(db, tables))
    with db.transaction("log") as conn:
        unrated = conn.execute(text(f"""INSERT INTO {tables.assistant_log} (user_name, question, source,
            duration_ms, outcome) VALUES ('ann', 'q', 'genie', 1, 'answered') RETURNING log_id""")).scalar()
    with pytest.raises(ValidationError, match="helpful"):
        verified.promote(EDITOR, "Top cities?", TOP, frame, source="genie", log_id=unrated)
    kept = verified.promote(EDITOR, "Top cities?", TOP, frame, source="genie", log_id=helpful(db, tables))
    [question] = verified.all()
    assert (question.verified_id, question.sql, question.row_count, question.promoted_by) == (kept, TOP, 5, EDITOR)
    assert question.checksum == checksum(frame) and question.last_outcome is None


def test_verifying_a_question_already_verified_changes_nothing_and_says_by_whom(db, tables):
    from data.errors import ConflictError
    verified = VerifiedQuestions(db, tables, editors=EditorPolicy((EDITOR, "bo@example.com")))
    verified.promote(EDITOR, "Top cities?", TOP, result(db, TOP), source="genie", log_id=helpful(db, tables))
    with pytest.raises(ConflictError, match=f"already verified by {EDITOR}"):
        verified.promote("bo@example.com", "Top cities?", BOTTOM, result(db, BOTTOM), source="genie",
                         log_id=helpful(db, tables))
    [kept] = verified.all()
    assert (kept.sql, kept.promoted_by) == (TOP, EDITOR)


def test_a_check_says_how_each_question_came_out_and_scores_them(db, tables, verified, assistant_workspace):
    genie = make_assistant(db, tables).genie
    for question, sql in (("same sql?", TOP), ("same result?", TOP), ("changed?", TOP), ("broken?", TOP)):
        verified.promote(EDITOR, question, sql, result(db, sql), source="genie", log_id=helpful(db, tables, question))
    assistant_workspace.script("same sql?", sql=TOP)
    assistant_workspace.script("same result?", sql=TOP_AGAIN)
    assistant_workspace.script("changed?", sql=BOTTOM)
    assistant_workspace.script("broken?", statuses=("ASKING_AI", "FAILED"), sql=None, error="no such table")
    run = verified.check(genie)
    assert run.outcomes == {"same_sql": 1, "same_result": 1, "different_result": 1, "failed": 1}
    assert (run.total, run.matched, run.score) == (4, 2, 0.5)
    outcomes = {v.question: v.last_outcome for v in verified.all()}
    assert outcomes == {"same sql?": "same_sql", "same result?": "same_result", "changed?": "different_result",
                        "broken?": "failed"}
    assert verified.runs()[0].run_id == run.run_id


def test_one_check_at_a_time_and_once_a_day_unless_asked(db, tables, verified, assistant_workspace):
    genie = make_assistant(db, tables).genie
    verified.promote(EDITOR, "q?", TOP, result(db, TOP), source="genie", log_id=helpful(db, tables, "q?"))
    assert verified.check(genie, force=False) is not None
    assert verified.check(genie, force=False) is None, "checked within the day"
    assert verified.check(genie) is not None, "Check now"
    assert [r.total for r in verified.runs()] == [1, 1]


def test_a_removed_question_is_checked_no_more(db, tables, verified, assistant_workspace):
    kept = verified.promote(EDITOR, "q?", TOP, result(db, TOP), source="genie", log_id=helpful(db, tables, "q?"))
    with pytest.raises(PermissionDenied):
        verified.remove(kept, READER)
    assert verified.remove(kept, EDITOR)
    assert verified.check(make_assistant(db, tables).genie).total == 0


# -- in the Assistant workspace ------------------------------------------------------------------

def chat_with(db, tables, verified, user):
    from dashboard.assistant import AssistantState, AssistantView
    from dashboard.state import AppState
    view = AssistantView(state=AssistantState(AppState(user=user), make_assistant(db, tables), None, None, verified))
    view.__panel__()
    return view


def vote(message, positive: bool):
    """Click a thumb. On a thread of its own, as the server's would be: Playwright's sync API keeps an
    event loop running in the test's thread, where the view's follow-up work would never run."""
    from concurrent.futures import ThreadPoolExecutor

    from dashboard.assistant.answer import QuestionBar
    bar = next(b for b in message.select(QuestionBar) if b.votes)
    with ThreadPoolExecutor(1) as pool:
        pool.submit(bar._handle_msg, {"vote": positive}).result(timeout=30)
    return bar


def buttons(message, label):
    return [b for b in message.select(lambda c: getattr(c, "label", None) == label)]


def test_an_editor_verifies_a_helpful_answer_from_the_chat(db, tables, verified, assistant_workspace):
    from .test_assistant_views import ask
    view = chat_with(db, tables, verified, EDITOR)
    answer = ask(view, "Which cities have the most viewers?")[-1]
    assert not buttons(answer, "Verify this answer"), "only after a thumbs-up"
    vote(answer, True)
    [verify] = buttons(answer, "Verify this answer")
    verify.clicks += 1
    assert "Verified: Genie will be asked this again" in " ".join(
        str(getattr(c, "object", "")) for c in answer.select(pn.pane.HTML))
    assert [v.question for v in verified.all()] == ["Which cities have the most viewers?"]


def test_someone_who_is_not_an_editor_is_not_offered_to_verify(db, tables, verified, assistant_workspace):
    from .test_assistant_views import ask
    answer = ask(chat_with(db, tables, verified, READER), "Which cities have the most viewers?")[-1]
    vote(answer, True)
    assert not buttons(answer, "Verify this answer")


def test_a_thumbs_down_offers_to_ask_again_or_another_way(db, tables, verified, assistant_workspace):
    from dashboard.assistant.answer import QuestionBar
    from .test_assistant_views import ask
    view = chat_with(db, tables, verified, READER)
    answer = ask(view, "Which cities have the most viewers?")[-1]
    vote(answer, False)
    assert buttons(answer, "Ask again")
    other_ways = next(b for b in answer.select(QuestionBar) if b.label == "Or ask it another way:")
    deadline = time.monotonic() + 10
    while not other_ways.questions and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other_ways.questions == ["Show viewers per city last month", "Which 5 cities have the highest conversion?"]


def test_the_verified_tab_lists_checks_and_scores(db, tables, verified, assistant_workspace):
    from dashboard.assistant.verified import VerifiedView
    view = chat_with(db, tables, verified, EDITOR)
    verified.promote(EDITOR, "same sql?", TOP, result(db, TOP), source="genie", log_id=helpful(db, tables, "same sql?"))
    verified.promote(EDITOR, "changed?", TOP, result(db, TOP), source="genie", log_id=helpful(db, tables, "changed?"))
    assistant_workspace.script("same sql?", sql=TOP)
    assistant_workspace.script("changed?", sql=BOTTOM)
    tab = VerifiedView(view._ask, state=view.state)
    tab.__panel__()
    assert [i["sentence"] for i in tab.list.items] == ["changed?", "same sql?"] and tab.list.dismissable
    assert tab.score.object == "Not checked yet."
    from .helpers import run_async
    run_async(tab._check)
    assert tab.result == "Checked 2 questions: 1 still matches."
    assert "1 of 2 still match (50%)" in tab.score.object
    assert any("latest check: a different result" in i["meta"] for i in tab.list.items)
    tab.list._handle_msg({"dismiss": tab.list.items[0]["id"]})            # Remove
    assert [i["sentence"] for i in tab.list.items] == ["same sql?"]
