"""The assistant end to end: the real Databricks SDK talks to the fake workspace's Genie and
serving endpoint; SQL runs on the test PostgreSQL; every question lands in the log."""
from __future__ import annotations

import io
import threading
import time

import pandas as pd
import pytest
from sqlalchemy import text

from data.assistant import Answer, Assistant, Conversation, Failure, build_assistant, download
from data.assistant.claude import Claude
from data.assistant.budget import RateLimiter, SharedSends
from data.assistant.genie import Genie
from data.assistant.guard import SqlGuard
from data.backend import Backend
from data.errors import AppError
from data.settings import load_settings
from data.workspace import workspace_client

from .conftest import app_role_database, make_assistant
from .fake_workspace import DEFAULT_SQL, SPACE_ID

USER = "analyst@example.com"


@pytest.fixture
def assistant(db, tables, assistant_workspace):
    return make_assistant(db, tables)


def ask(assistant, question, conversation=None, **kwargs):
    statuses = []
    result = assistant.ask(USER, question, conversation or Conversation(), on_status=statuses.append, **kwargs)
    return result, statuses


def logged(db, tables):
    return db.frame("log", f"SELECT * FROM {tables.assistant_log} ORDER BY log_id")


def test_a_question_is_answered_with_steps_sql_table_and_log(db, tables, assistant):
    answer, statuses = ask(assistant, "Which cities have the most viewers?")
    assert isinstance(answer, Answer) and answer.source == "genie" and not answer.cached
    assert statuses == ["SUBMITTED", "FETCHING_METADATA", "ASKING_AI", "EXECUTING_QUERY", "COMPLETED"]
    expected = db.frame("expected", DEFAULT_SQL)
    assert list(answer.frame.columns) == ["city", "total_viewers", "conversion_rate"]
    assert list(answer.frame["city"]) == list(expected["city"])
    assert answer.frame["total_viewers"].dtype.kind in "iu" or str(answer.frame["total_viewers"].dtype) == "Int64"
    assert answer.sql == DEFAULT_SQL and answer.text and answer.row_count == 10 and not answer.truncated
    row = logged(db, tables).iloc[-1]
    assert (row["user_name"], row["question"], row["source"], row["outcome"], row["cached"], row["sql_text"]) == \
        (USER, "Which cities have the most viewers?", "genie", "answered", False, DEFAULT_SQL)
    assert row["duration_ms"] >= 0 and row["row_count"] == 10 and row["conversation_id"].startswith("conv-")


def test_claude_streams_a_summary_and_suggests_follow_ups(assistant):
    answer, _ = ask(assistant, "Which cities have the most viewers?")
    pieces = list(assistant.summary(answer))
    assert len(pieces) > 3 and "".join(pieces).startswith("Summary: the result has 10 rows")
    assert assistant.follow_ups(answer) == ["Which city converts best?", "How did demand change last quarter?",
                                            "What is the revenue per city?"]


def test_the_summary_arrives_piece_by_piece(db, tables, assistant_workspace):
    assistant_workspace.stream_pause = 0.05
    assistant = make_assistant(db, tables)
    answer, _ = ask(assistant, "Which cities have the most viewers?")
    arrivals = []
    for _ in assistant.summary(answer):
        arrivals.append(time.monotonic())
    assert arrivals[-1] - arrivals[0] > 0.2, "pieces were shown as they came, not all at the end"


def test_genie_suggestions_are_preferred_for_follow_ups(assistant_workspace, assistant):
    assistant_workspace.script("by device", suggested=("And on tablets?", "And last week?"))
    answer, _ = ask(assistant, "Conversion by device")
    assert assistant.follow_ups(answer) == ["And on tablets?", "And last week?"]


def test_follow_ups_stay_in_the_same_genie_conversation(assistant_workspace, assistant):
    conversation = Conversation()
    first, _ = ask(assistant, "Which cities have the most viewers?", conversation)
    second, _ = ask(assistant, "What is the revenue per city?", conversation)
    assert first.conversation_id == second.conversation_id == conversation.genie_id
    assert len(assistant_workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/start-conversation", "POST")) == 1
    assert len(assistant_workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/conversations/{conversation.genie_id}/messages",
                                  "POST")) == 1


def test_the_same_question_within_five_minutes_comes_from_the_cache(db, tables, assistant_workspace, assistant):
    ask(assistant, "Top cities by viewers")
    posts = len(assistant_workspace.calls_to("/api/2.0/genie", "POST"))
    again, statuses = ask(assistant, "  top CITIES by   viewers ")
    assert again.cached and statuses == ["CACHED"]
    assert len(assistant_workspace.calls_to("/api/2.0/genie", "POST")) == posts, "Genie was not asked again"
    assert list(logged(db, tables)["cached"]) == [False, True]


def test_a_cached_answer_repeats_its_summary_and_follow_ups_without_asking_claude(assistant_workspace, assistant):
    first, _ = ask(assistant, "Top cities by viewers")
    summary = "".join(assistant.summary(first))
    follow_ups = assistant.follow_ups(first)
    calls = len(assistant_workspace.calls_to("/serving-endpoints/"))
    again, _ = ask(assistant, "Top cities by viewers")
    assert again.cached and "".join(assistant.summary(again)) == summary and assistant.follow_ups(again) == follow_ups
    assert len(assistant_workspace.calls_to("/serving-endpoints/")) == calls


def test_a_question_asked_in_one_process_is_answered_from_the_cache_in_another(pg, database_name, tables,
                                                                              assistant_workspace):
    """Two processes (each its own pool and assistant): the answer, and the summary and follow-ups
    Claude wrote in the first, reach the second without asking Genie or Claude again."""
    here, there = app_role_database(pg, database_name), app_role_database(pg, database_name)
    try:
        first, second = make_assistant(here, tables), make_assistant(there, tables)
        answer, _ = ask(first, "Top cities by viewers")
        summary, follow_ups = "".join(first.summary(answer)), first.follow_ups(answer)
        calls = len(assistant_workspace.calls_to("/api/2.0/genie", "POST")), \
            len(assistant_workspace.calls_to("/serving-endpoints/"))
        again, statuses = ask(second, "top cities by viewers")
        assert again.cached and statuses == ["CACHED"] and again.question == "top cities by viewers"
        assert again.sql == answer.sql and again.frame.to_dict("split") == answer.frame.to_dict("split"), \
            (again.frame.dtypes, answer.frame.dtypes)
        assert "".join(second.summary(again)) == summary and second.follow_ups(again) == follow_ups
        assert (len(assistant_workspace.calls_to("/api/2.0/genie", "POST")),
                len(assistant_workspace.calls_to("/serving-endpoints/"))) == calls
    finally:
        here.dispose()
        there.dispose()


def test_cleared_or_expired_answers_are_asked_again(db, tables, assistant_workspace, assistant):
    ask(assistant, "Top cities by viewers")
    assistant.clear_cache()                            # Refresh data, in any process
    again, _ = ask(assistant, "Top cities by viewers")
    assert not again.cached
    with db.transaction("expire") as conn:
        conn.execute(text(f"UPDATE {tables.answer_cache} SET expires_at = now() - interval '1 second'"))
    assert not ask(assistant, "Top cities by viewers")[0].cached
    assert db.scalar("n", f"SELECT count(*) FROM {tables.answer_cache}") == 1, "expired answers are swept"


def test_people_asking_as_themselves_never_share_cached_answers(db, tables, assistant_workspace, assistant):
    ana, ben = assistant.as_user(workspace_client(), "ana@example.com"), \
        assistant.as_user(workspace_client(), "ben@example.com")
    ask(ana, "Top cities by viewers")
    assert not ask(ben, "Top cities by viewers")[0].cached
    assert ask(ana, "Top cities by viewers")[0].cached


@pytest.mark.parametrize("script, outcome, text", [
    ({"statuses": ("ASKING_AI", "FAILED"), "error": "No table matches 'unicorns'"}, "failed", "No table matches"),
    ({"statuses": ("ASKING_AI", "CANCELLED")}, "cancelled", "Genie cancelled"),
    ({"statuses": ("ASKING_AI", "COMPLETED"), "sql": None, "text": "I can only describe the data."}, "no_sql",
     "without a query"),
])
def test_genie_failures_become_plain_messages_with_rephrasings(db, tables, assistant_workspace, assistant, script, outcome, text):
    assistant_workspace.script("unicorns", **script)
    started = time.monotonic()
    failure, statuses = ask(assistant, "How many unicorns were sold?")
    assert isinstance(failure, Failure) and failure.outcome == outcome and text in failure.message
    assert time.monotonic() - started < 5, "terminal statuses end the wait at once (the SDK waiter would not)"
    assert statuses[-1] in ("FAILED", "CANCELLED", "COMPLETED")
    explanation, rephrasings = assistant.explain(failure)
    if outcome != "cancelled":
        assert explanation and rephrasings == ["Show viewers per city last month",
                                               "Which 5 cities have the highest conversion?"]
    assert logged(db, tables).iloc[-1]["outcome"] == outcome


def test_an_expired_result_is_run_again(assistant_workspace, assistant):
    assistant_workspace.script("yesterday", expired=True)
    answer, statuses = ask(assistant, "Viewers yesterday")
    assert isinstance(answer, Answer) and len(answer.frame) == 10
    assert "QUERY_RESULT_EXPIRED" in statuses
    assert len(assistant_workspace.calls_to("/api/2.0/genie", "POST")) == 2     # the question, then execute-query


def test_a_truncated_result_says_so(assistant_workspace, assistant):
    assistant_workspace.script("everything", row_limit=3)
    answer, _ = ask(assistant, "Show everything")
    assert answer.truncated and len(answer.frame) == 3


def test_a_question_that_never_finishes_times_out(db, tables, assistant_workspace):
    assistant_workspace.script("forever", statuses=("ASKING_AI",))
    assistant = make_assistant(db, tables, timeout=1.0)
    started = time.monotonic()
    failure, _ = ask(assistant, "Think forever")
    assert failure.outcome == "timeout" and "No answer within 1 seconds" in failure.message
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("trouble", ["slow start", "busy polls", "slow start then busy polls"])
def test_a_question_ends_by_its_deadline_whatever_each_call_does(db, tables, assistant_workspace, trouble):
    """The SDK bounds each call on its own (a 429 is retried for up to 30 s): the question's deadline
    bounds them all, so the person hears back in time instead of waiting minutes."""
    genie = f"/api/2.0/genie/spaces/{SPACE_ID}"
    if "slow start" in trouble:
        assistant_workspace.fail(genie + "/start-conversation", 200, times=1, delay=5)
    if "busy polls" in trouble:
        assistant_workspace.fail(genie + "/conversations", 429, times=100, error_code="REQUEST_LIMIT_EXCEEDED")
    assistant = make_assistant(db, tables, timeout=2.0)
    started = time.monotonic()
    failure, _ = ask(assistant, "Which cities have the most viewers?")
    assert isinstance(failure, Failure) and failure.outcome in ("timeout", "failed"), failure
    assert time.monotonic() - started < 3


def test_stop_ends_the_question(db, tables, assistant_workspace):
    assistant_workspace.script("slow", statuses=("ASKING_AI",))
    assistant = make_assistant(db, tables, timeout=30)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    failure, _ = ask(assistant, "A slow question", cancel=cancel)
    assert failure.outcome == "cancelled" and time.monotonic() - started < 2
    assert logged(db, tables).iloc[-1]["outcome"] == "cancelled"


def test_genie_rate_limit_answers_after_the_retry(assistant_workspace, assistant):
    assistant_workspace.fail(f"/api/2.0/genie/spaces/{SPACE_ID}/start-conversation", 429, times=1,
                   error_code="TOO_MANY_REQUESTS", headers={"Retry-After": "1"})
    answer, _ = ask(assistant, "Which cities have the most viewers?")
    assert isinstance(answer, Answer)
    assert len(assistant_workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/start-conversation")) == 2


def test_questions_beyond_the_rate_are_queued_with_a_visible_wait():
    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    never = threading.Event()
    for _ in range(2):
        limiter.acquire(lambda p, s: None, never, deadline=1e9)
    waits = []

    def on_wait(position, seconds):
        waits.append((position, round(seconds)))
        clock.now += 61                       # time passes while the question waits
    limiter.acquire(on_wait, never, deadline=1e9)
    assert waits == [(0, 60)]


def test_every_process_draws_from_one_genie_budget(pg, database_name, tables):
    """Eight processes (each its own pool) with two questions each, at once, under a budget of 5 a
    minute: five are sent, the other eleven wait, told how long, and nothing is sent beyond the budget."""
    databases = [app_role_database(pg, database_name) for _ in range(8)]
    try:
        limiters = [RateLimiter(5, SharedSends(d, tables)) for d in databases]
        sent, waits, start = [], [], threading.Barrier(16)

        def ask(limiter):
            start.wait()
            try:
                limiter.acquire(lambda position, seconds: waits.append(seconds), threading.Event(),
                                deadline=time.monotonic() + 0.5)
                sent.append(limiter)
            except AppError as exc:
                assert "at most 5 a minute" in exc.message
        threads = [threading.Thread(target=ask, args=(limiter,)) for limiter in limiters * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(sent) == 5
        assert databases[0].scalar("n", f"SELECT count(*) FROM {tables.genie_sends}") == 5
        assert waits and all(0 <= w <= 60 for w in waits) and max(waits) > 55
    finally:
        for d in databases:
            d.dispose()


def test_a_question_sent_a_minute_ago_no_longer_counts(db, tables):
    sends = SharedSends(db, tables)
    assert [sends.take(2), sends.take(2)] == [None, None]
    assert 59 < sends.take(2) <= 60
    with db.transaction("age") as conn:
        conn.execute(text(f"UPDATE {tables.genie_sends} SET sent_at = sent_at - interval '61 seconds'"))
    assert sends.take(2) is None
    assert db.scalar("n", f"SELECT count(*) FROM {tables.genie_sends}") == 1


def test_claude_writes_sql_when_there_is_no_genie(db, tables, assistant_workspace):
    assistant = make_assistant(db, tables, genie=False)
    assistant_workspace.script("orders by status", sql="SELECT status, count(*) AS orders FROM orders GROUP BY status")
    answer, statuses = ask(assistant, "How many orders by status?")
    assert answer.source == "claude" and "retail360.orders" in answer.sql and set(answer.frame.columns) == {"status", "orders"}
    assert statuses == ["ASKING_AI", "EXECUTING_QUERY"]
    assert "retail360.orders(" in assistant.schema_text()


def test_sql_claude_writes_still_goes_through_the_guard(db, tables, assistant_workspace):
    assistant = make_assistant(db, tables, genie=False)
    assistant_workspace.script("delete", sql="DELETE FROM retail360.orders")
    failure, _ = ask(assistant, "Please delete the orders")
    assert failure.outcome == "refused" and "was not run" in failure.message
    assert db.scalar("n", f"SELECT count(*) FROM {tables.orders}") > 0


def test_sql_command_runs_through_the_guard(db, tables, assistant):
    answer, _ = ask(assistant, "/sql SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY n DESC")
    assert answer.source == "sql" and answer.frame["n"].sum() == db.scalar("n", f"SELECT count(*) FROM {tables.orders}")
    refused, _ = ask(assistant, "/sql DELETE FROM orders")
    assert refused.outcome == "refused" and "Only SELECT" in refused.message
    assert list(logged(db, tables)["source"]) == ["sql", "sql"]


def test_nothing_configured_says_what_to_set_and_sql_still_works(db, tables, clean_env):
    settings = load_settings({})
    backend = Backend(settings, db, tables, credentials=None, host="", user="")
    assistant = build_assistant(settings, backend)
    failure, _ = ask(assistant, "Which cities have the most viewers?")
    assert failure.outcome == "unavailable"
    assert all(name in failure.message for name in ("GENIE_SPACE_ID", "DATABRICKS_HOST", "SERVING_ENDPOINT", "/sql"))
    answer, _ = ask(assistant, "/sql SELECT count(*) AS n FROM orders")
    assert isinstance(answer, Answer) and answer.frame["n"].iloc[0] > 0
    assert list(assistant.summary(answer)) == [] and assistant.follow_ups(answer) == []


def test_feedback_is_stored_and_sent_to_genie(db, tables, assistant_workspace, assistant):
    answer, _ = ask(assistant, "Which cities have the most viewers?")
    assistant.feedback(USER, answer, positive=True)
    assistant.feedback(USER, answer, positive=False)              # changing one's mind updates the vote
    votes = db.frame("f", f"SELECT log_id, user_name, rating, sent_to_genie FROM {tables.assistant_feedback}")
    assert votes.to_dict("records") == [{"log_id": answer.log_id, "user_name": USER, "rating": -1,
                                         "sent_to_genie": True}]
    assert [f["rating"] for f in assistant_workspace.feedback] == ["POSITIVE", "NEGATIVE"]


def test_claude_failures_do_not_break_the_answer(assistant_workspace, assistant):
    answer, _ = ask(assistant, "Which cities have the most viewers?")
    assistant_workspace.fail("/serving-endpoints/", 500, times=5)
    assert assistant.follow_ups(answer) == []
    assert assistant.explain(Failure("q", "failed", "boom")) == ("", [])


def test_downloads_carry_the_summary(assistant):
    answer, _ = ask(assistant, "Which cities have the most viewers?")
    csv_text = download(answer, "Phuket leads.", "csv").decode()
    assert csv_text.startswith("# Question: Which cities have the most viewers?\n# Summary: Phuket leads.")
    assert len(pd.read_csv(io.StringIO(csv_text), comment="#")) == 10
    workbook = pd.read_excel(io.BytesIO(download(answer, "Phuket leads.", "xlsx")), sheet_name=None)
    assert set(workbook) == {"Result", "Summary"} and len(workbook["Result"]) == 10
    assert "Phuket leads." in workbook["Summary"].to_string()


def test_a_wrong_space_or_endpoint_is_a_configuration_message(db, tables, assistant_workspace):
    w = workspace_client()
    assistant = Assistant(db, tables, SqlGuard(db, tables), genie=Genie(w, "no-such-space", RateLimiter(50)),
                          claude=Claude(w, "no-such-endpoint"))
    failure, _ = ask(assistant, "Which cities have the most viewers?")
    assert failure.outcome == "failed" and "Genie did not accept the question" in failure.message
    with pytest.raises(Exception, match="SERVING_ENDPOINT"):
        Claude(w, "no-such-endpoint").complete("s", "u")


def test_with_assistant_as_user_genie_and_claude_are_asked_with_the_users_token(db, tables, assistant_workspace):
    from data.assistant import assistant_for_session
    user_token = "dapi-user-own-token-123"
    assistant_workspace.user_tokens.add(user_token)
    app_assistant = make_assistant(db, tables)
    headers = {"X-Forwarded-Access-Token": user_token}
    off = load_settings({**assistant_workspace.env(), "GENIE_SPACE_ID": SPACE_ID})
    assert assistant_for_session(app_assistant, off, headers, USER) is app_assistant, "off unless allowed"
    on = load_settings({**assistant_workspace.env(), "GENIE_SPACE_ID": SPACE_ID, "ASSISTANT_AS_USER": "true"})
    assert assistant_for_session(app_assistant, on, {}, USER) is app_assistant, "no token: the app's identity"
    mine = assistant_for_session(app_assistant, on, headers, USER)
    before = len(assistant_workspace.calls)
    answer, _ = ask(mine, "Which cities have the most viewers?")
    assert isinstance(answer, Answer) and list(mine.summary(answer))
    used = {c.headers.get("authorization") for c in assistant_workspace.calls[before:]}
    assert used == {f"Bearer {user_token}"}, "every Genie and serving call ran as the user"
    again, _ = ask(app_assistant, "Which cities have the most viewers?")
    assert not again.cached, "answers given as one user are not served to another identity"


def test_a_users_token_that_is_refused_is_a_plain_message(db, tables, assistant_workspace):
    from data.assistant import assistant_for_session
    on = load_settings({**assistant_workspace.env(), "GENIE_SPACE_ID": SPACE_ID, "ASSISTANT_AS_USER": "true"})
    mine = assistant_for_session(make_assistant(db, tables), on, {"X-Forwarded-Access-Token": "expired"}, USER)
    failure, _ = ask(mine, "Which cities have the most viewers?")
    assert isinstance(failure, Failure) and failure.outcome == "failed" and "expired" not in failure.message
