"""Conversations that last: what is kept of each question, who may read it back, and what a shared
link shows to someone else."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from data.assistant import Answer, Failure
from data.assistant.history import History
from data.assistant.snapshots import from_snapshot, snapshot

ANA, BEN = "ana@example.com", "ben@example.com"


@pytest.fixture
def history(db, tables):
    return History(db, tables)


def answer(question="Which cities have the most viewers?", **extra) -> Answer:
    frame = pd.DataFrame({"city": ["Phuket", "Paris"], "viewers": [15000, 9000],
                          "rate": [Decimal("15.80"), Decimal("11.60")],
                          "day": pd.to_datetime(["2026-12-01", "2026-12-02"], utc=True)})
    return Answer(question, "genie", frame, sql="SELECT city, viewers FROM city_investment", text="Here you go.",
                  row_count=2, summary="Phuket leads.", unusual=("Paris is low.", "medium"),
                  follow_up_questions=["Why is Paris low?"], **extra)


def test_an_answer_is_kept_whole_and_read_back_in_order(history):
    conversation = history.start(ANA, "Which cities have the most viewers?")
    first = history.record(conversation, ANA, answer(), genie_id="g-1")
    second = history.record(conversation, ANA, Failure("And by device?", "failed", "Genie could not answer.",
                                                       source="genie"))
    turns = history.turns(conversation, ANA)
    assert [t.turn_id for t in turns] == [first, second]
    kept = turns[0]
    assert (kept.question, kept.sql, kept.text, kept.summary) == (
        "Which cities have the most viewers?", "SELECT city, viewers FROM city_investment", "Here you go.",
        "Phuket leads.")
    assert kept.unusual == ("Paris is low.", "medium") and kept.follow_ups == ["Why is Paris low?"]
    assert kept.frame["city"].tolist() == ["Phuket", "Paris"]
    assert kept.frame["rate"].tolist() == [15.8, 11.6], "decimals come back as numbers a chart can draw"
    assert str(kept.frame["day"].dtype).startswith("datetime64")
    assert kept.asked_at.tzinfo is not None, "a stored result says when it was taken"
    assert turns[1].outcome == "failed" and turns[1].message == "Genie could not answer." and turns[1].frame is None
    assert history.conversations(ANA)[0].genie_id == "g-1", "a reopened conversation continues Genie's"


def test_each_person_sees_only_their_own_conversations(history):
    mine = history.start(ANA, "first")
    history.record(mine, ANA, answer())
    theirs = history.start(BEN, "second")
    assert [c.conversation_id for c in history.conversations(ANA)] == [mine]
    assert history.conversations(ANA)[0].turns == 1
    assert history.turns(theirs, ANA) == []
    with pytest.raises(LookupError):
        history.record(theirs, ANA, answer())
    assert history.turns(theirs, BEN) == []


def test_the_latest_conversation_comes_first(history):
    older = history.start(ANA, "older")
    newer = history.start(ANA, "newer")
    history.record(older, ANA, answer())           # asked in again: now the latest
    assert [c.title for c in history.conversations(ANA)] == ["older", "newer"]
    assert newer in [c.conversation_id for c in history.conversations(ANA)]


def test_deleting_a_conversation_deletes_its_turns_and_only_its_owner_may(history, db, tables):
    conversation = history.start(ANA, "to delete")
    turn = history.record(conversation, ANA, answer())
    assert not history.delete(conversation, BEN)
    assert history.delete(conversation, ANA)
    assert history.conversations(ANA) == []
    assert db.scalar("n", f"SELECT count(*) FROM {tables.assistant_turns}") == 0
    assert history.shared(turn, ANA)[0] is None


def test_a_long_question_makes_a_short_title(history):
    history.start(ANA, "Which " + "very " * 60 + "long question?")
    title = history.conversations(ANA)[0].title
    assert len(title) <= 120 and title.endswith("\u2026")


def test_an_answer_asked_as_the_app_opens_for_anyone(history):
    turn = history.record(history.start(ANA, "q"), ANA, answer())
    shown, why = history.shared(turn, BEN)
    assert why == "" and shown.frame is not None and shown.sql


def test_an_answer_asked_with_someone_s_own_permissions_opens_only_for_them(history):
    turn = history.record(history.start(ANA, "q"), ANA, answer(), acted_as=ANA)
    own, why = history.shared(turn, ANA)
    assert why == "" and own.frame is not None
    other, why = history.shared(turn, BEN)
    assert "author's own data permissions" in why
    assert other.question == "Which cities have the most viewers?"
    assert other.frame is None and other.sql is None and other.summary == "" and other.text == ""


def test_a_link_to_no_answer_says_so(history):
    shown, why = history.shared(10**9, ANA)
    assert shown is None and "no such answer" in why


def test_text_is_kept_as_it_was_typed(history):
    hostile = "<script>alert(1)</script> ' OR 1=1 --"
    conversation = history.start(ANA, hostile)
    history.record(conversation, ANA, answer(question=hostile))
    assert history.turns(conversation, ANA)[0].question == hostile
    assert history.conversations(ANA)[0].title == hostile


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=20), st.one_of(st.none(), st.integers(-2**53, 2**53)),
                          st.floats(allow_nan=False, allow_infinity=False, width=32)), max_size=15))
def test_a_snapshot_reads_back_the_values_it_was_given(rows):
    frame = pd.DataFrame(rows, columns=["name", "count", "share"])
    back = from_snapshot(snapshot(frame))
    assert back["name"].tolist() == frame["name"].tolist()
    assert [None if pd.isna(v) else v for v in back["count"]] == [None if pd.isna(v) else v for v in frame["count"]]
    assert back["share"].tolist() == pytest.approx(frame["share"].tolist())


def test_a_snapshot_keeps_times_and_empty_values():
    frame = pd.DataFrame({"at": [datetime(2026, 12, 2, 10, 42, tzinfo=timezone.utc), None],
                          "note": ["x", None]})
    back = from_snapshot(snapshot(frame))
    assert back["at"][0] == pd.Timestamp("2026-12-02 10:42", tz="UTC") and pd.isna(back["at"][1])
    assert back["note"].tolist()[0] == "x" and back["note"].tolist()[1] is None
