"""Who else is there: Ana and Bo work on the same orders from different processes (each with its
own listener on the presence channel), and each sees where the other is and what they edit."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from sqlalchemy import text

from dashboard.orders.form import OrderForm
from dashboard.orders.grid import OrdersGrid
from dashboard.orders.state import OrdersState
from dashboard.state import AppState
from data.changes import ChangeFeed
from data.orders import EditorPolicy, Orders
from data.presence import CHANNEL, Presence

from .helpers import eventually


@pytest.fixture
def processes(db, tables):
    """Two server processes' presence, each following the channel on its own connection."""
    made = []

    def process(name: str) -> Presence:
        feed = ChangeFeed(db, CHANNEL).start()
        assert eventually(lambda: feed.connected, 10)
        made.append(feed)
        return Presence(db, tables, feed=feed, process=name)
    with db.transaction("clean") as conn:
        conn.execute(text(f"DELETE FROM {tables.presence}"))
    yield process
    for feed in made:
        feed.stop()


@pytest.fixture
def person(db, tables, processes):
    orders = Orders(db, tables, EditorPolicy(("*",)))
    states = []

    def sign_in(user: str, presence: Presence) -> OrdersState:
        state = OrdersState(AppState(user=user), orders, presence=presence)
        states.append(state)
        return state
    yield sign_in
    for state in states:
        state.stop_following()


def test_ana_opening_an_order_and_typing_a_note_shows_in_bo_s_grid(person, processes):
    ana = person("ana@example.com", processes("host:1"))
    bo_grid = OrdersGrid(state=person("bo@example.com", processes("host:2")))
    order_id = int(bo_grid.table.table.value["order_id"].iloc[0])

    ana.order = order_id                                     # the form opens (a link or a click)
    form = OrderForm(state=ana, order_id=order_id)
    assert eventually(lambda: bo_grid.here == f"ana@example.com has #{order_id} open")
    form.notes.value = "call before delivery"
    assert eventually(lambda: bo_grid.here == f"ana@example.com is editing #{order_id} notes")
    ana.order = None                                         # she closes it
    assert eventually(lambda: bo_grid.here == "")


def test_bo_s_form_shows_ana_editing_a_cell_of_its_order_until_her_edit_is_saved(person, processes):
    ana_grid = OrdersGrid(state=person("ana@example.com", processes("host:1")))
    bo = person("bo@example.com", processes("host:2"))
    row = ana_grid.table.table.value.iloc[0].to_dict()
    order_id = int(row["order_id"])
    bo.order = order_id
    bo_form = OrderForm(state=bo, order_id=order_id)

    ana_grid._editing(SimpleNamespace(row=0, column="shipping_address"))
    assert eventually(lambda: bo_form.here == "ana@example.com is editing shipping address")
    ana_grid._edit(row, "shipping_address", "12 Quay Street")
    assert eventually(lambda: bo_form.here == "")
    ana_grid._editing(SimpleNamespace(row=0, column="total"))          # not editable: not an edit
    ana_grid._editing(SimpleNamespace(row=0, column="order_id"))       # opens the form, which says so itself
    time.sleep(0.3)
    assert bo_form.here == ""


def test_a_person_does_not_see_themselves_but_sees_their_other_tab(person, processes):
    presence = processes("host:1")
    first_tab, second_tab = person("ana@example.com", presence), person("ana@example.com", presence)
    grid = OrdersGrid(state=first_tab)
    order_id = int(grid.table.table.value["order_id"].iloc[0])
    first_tab.order = order_id
    time.sleep(0.3)
    assert first_tab.others_at([order_id]) == []
    second_tab.order = order_id
    assert eventually(lambda: grid.here == f"ana@example.com has #{order_id} open")


def test_presence_ends_when_the_session_closes_or_its_process_goes_quiet(db, tables, person, processes):
    ana_process, bo_process = processes("host:1"), processes("host:2")
    ana, bo = person("ana@example.com", ana_process), person("bo@example.com", bo_process)
    bo.order = 11
    ana.order = 12
    assert eventually(lambda: [h.user for h in ana.others_at([11, 12])] == ["bo@example.com"])
    bo.stop_following()                                      # Bo's session closed
    assert eventually(lambda: ana.others_at([11, 12]) == [])

    cy = person("cy@example.com", bo_process)
    cy.order = 11
    assert eventually(lambda: [h.user for h in ana.others_at([11])] == ["cy@example.com"])
    with db.transaction("quiet") as conn:                    # Cy's process stopped beating a minute ago
        conn.execute(text(f"UPDATE {tables.presence} SET seen_at = now() - interval '1 minute' "
                          "WHERE process = 'host:2'"))
    ana_process.renew()                                      # any process's heartbeat sweeps it, and says so
    assert eventually(lambda: ana.others_at([11]) == [])


def test_an_unfinished_cell_edit_lapses(db, tables, person, processes):
    presence = processes("host:1")
    ana, bo = person("ana@example.com", presence), person("bo@example.com", presence)
    ana.be_at(11, "grid", ("notes",), for_seconds=0.2)
    assert eventually(lambda: bo.others_at([11]) != [])
    time.sleep(0.3)
    presence.renew()
    assert eventually(lambda: bo.others_at([11]) == [])


def test_names_and_fields_reach_the_page_as_text(person, processes):
    """A forwarded user name is whatever the proxy sent: the grid's line is plain text, and the
    pane it goes to escapes it."""
    presence = processes("host:1")
    grid = OrdersGrid(state=person("ops@example.com", presence))
    order_id = int(grid.table.table.value["order_id"].iloc[0])
    person("<img src=x onerror=alert(1)>", presence).order = order_id
    assert eventually(lambda: grid.here.startswith("<img src=x onerror=alert(1)> has"))
    rendered = [p for p in grid.__panel__().select(lambda o: getattr(o, "object", None) == grid.here)]
    assert rendered and "<img" not in rendered[0]._transform_object(grid.here)["object"]


def test_without_the_database_presence_is_not_shown_and_nothing_breaks(db, tables, person, processes, monkeypatch):
    presence = processes("host:1")
    ana = person("ana@example.com", presence)
    monkeypatch.setattr(presence, "t", SimpleNamespace(presence='"no_such_schema"."presence"'))
    ana.order = 11                                           # recorded nowhere, with a warning line
    assert ana.others_at([11]) == []
