"""Asking from a chart: cities picked in the investment matrix, or properties in the scatter, go to the
Assistant as a question with the selection, and the answer says whether its SQL keeps to it."""
from __future__ import annotations

import pytest

from dashboard.assistant import AssistantState, AssistantView
from dashboard.marketplace.state import MarketplaceState
from dashboard.state import AppState
from data.assistant.selection import MAX_VALUES, Selection, check_filter
from data.marketplace import Marketplace

from .conftest import make_assistant
from .helpers import page_text
from .test_assistant_views import ask

CITIES = Selection("city", ("Paris", "Lisbon", "O'Hare"), "cities")


# -- the check of the answer's SQL -------------------------------------------------------------

@pytest.mark.parametrize("sql, used, filtered", [
    ("SELECT * FROM t WHERE city IN ('Paris', 'Lisbon', 'O''Hare')", {"Paris", "Lisbon", "O'Hare"}, True),
    ("SELECT * FROM t WHERE t.CITY = 'Paris' OR city = 'Lisbon'", {"Paris", "Lisbon"}, True),
    ("SELECT * FROM (SELECT * FROM t WHERE city IN ('Paris')) s JOIN u USING (city)", {"Paris"}, True),
    ("SELECT city, sum(v) FROM `main`.`gold`.t WHERE city IN ('Paris', 'Lisbon', 'O\\'Hare') GROUP BY ALL",
     {"Paris", "Lisbon", "O'Hare"}, True),                                     # Genie's Databricks SQL
    ("SELECT * FROM t WHERE city NOT IN ('Paris', 'Lisbon', 'O''Hare')", set(), False),
    ("SELECT * FROM t WHERE country IN ('Paris')", set(), False),             # another column
    ("SELECT * FROM t", set(), False),
    ("this is ( not SQL", set(), False),
    (None, set(), False),
])
def test_the_check_names_what_the_sql_filters_on(sql, used, filtered):
    check = check_filter(sql, CITIES)
    assert set(check.used) == used and check.filtered == filtered
    assert set(check.missing) == set(CITIES.values) - used
    assert check.keeps_to_selection == (used == set(CITIES.values))


def test_the_filter_is_spelled_out_with_quotes_doubled():
    assert CITIES.context() == "Only include rows where city IN ('Paris', 'Lisbon', 'O''Hare')."


# -- from the Marketplace to the Assistant ---------------------------------------------------

def marketplace(shared_db, tables, app) -> MarketplaceState:
    return MarketplaceState(app, Marketplace(shared_db, tables))


def test_asking_about_picked_cities_opens_the_assistant_with_the_question(shared_db, tables):
    app = AppState(user="ana", workspace=None)
    app.param.workspace.objects = ["marketplace", "assistant"]
    app.workspace = "marketplace"
    state = marketplace(shared_db, tables, app)
    state.ask_about_cities(["Paris", "Lisbon"])
    assert app.workspace == "assistant"
    assert app.handoff.question == "Compare demand, conversion and estimated revenue for Paris and Lisbon."
    assert app.handoff.selection == Selection("city", ("Paris", "Lisbon"), "cities")


def test_asking_about_picked_properties_names_them_and_filters_on_their_ids(shared_db, tables):
    app = AppState(user="ana", workspace=None)
    app.param.workspace.objects = ["marketplace", "assistant"]
    state = marketplace(shared_db, tables, app)
    points = state.points().head(2)
    state.ask_about_properties(points["id"].tolist())
    assert app.handoff.selection.column == "property_id"
    assert app.handoff.selection.values == tuple(str(i) for i in points["id"])
    assert all(name in app.handoff.question for name in points["name"])


def test_the_assistant_asks_a_handed_over_question_with_its_selection(db, tables, assistant_workspace):
    app = AppState(user="ana")
    app.param.workspace.objects = ["marketplace", "assistant"]
    view = AssistantView(state=AssistantState(app, make_assistant(db, tables)))
    view.__panel__()
    asked = []
    view._ask = asked.append
    from dashboard.state import ChartQuestion
    app.ask_assistant(ChartQuestion("Compare Paris and Lisbon.", CITIES))
    assert asked == ["Compare Paris and Lisbon."] and view.state.selection == CITIES
    assert app.handoff is None, "asked once"


def test_an_answer_that_keeps_to_the_selection_says_so(db, tables, assistant_workspace):
    view = AssistantView(state=AssistantState(AppState(user="ana"), make_assistant(db, tables)))
    view.__panel__()
    view.state.selection = Selection("city", ("Paris", "Lisbon"), "cities")
    answer = ask(view, "Compare demand for Paris and Lisbon.")[-1]
    shown = page_text([answer])
    assert "The SQL keeps to the 2 cities you selected." in shown
    asked = [m["content"] for m in assistant_workspace.genie_messages.values()]
    assert any("Only include rows where city IN ('Paris', 'Lisbon')." in q for q in asked), "Genie was told"
    assert "Only include rows" not in page_text(view.chat.objects[-2:-1]), "the person's words, as typed"


def test_an_answer_whose_sql_ignores_the_selection_warns(db, tables, assistant_workspace):
    assistant_workspace.script("compare demand", sql="SELECT city, total_viewers FROM marketplace.city_investment")
    view = AssistantView(state=AssistantState(AppState(user="ana"), make_assistant(db, tables)))
    view.__panel__()
    view.state.selection = Selection("city", ("Paris", "Lisbon"), "cities")
    shown = page_text([ask(view, "Compare demand for Paris and Lisbon.")[-1]])
    assert "The SQL does not filter on the cities you selected" in shown


def test_a_selection_too_large_for_a_question_is_refused_by_the_button():
    from dashboard.marketplace.views import AskButton
    asked = []
    button = AskButton("city", "cities", lambda: asked.append(True))
    button.show(0)
    assert not button.button.visible
    button.show(1)
    assert button.button.label == "Ask about this city" and not button.button.disabled
    button.show(MAX_VALUES + 1)
    assert button.button.disabled and f"at most {MAX_VALUES}" in button.button.label
