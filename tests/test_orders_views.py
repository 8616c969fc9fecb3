"""The Orders workspace as components: what an editor and a viewer see and can do, without a browser."""
from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import text

from dashboard.orders.conflict import MINE, THEIRS
from dashboard.orders.form import OrderForm
from dashboard.orders.grid import OrdersGrid
from dashboard.orders.state import OrdersState
from dashboard.orders.today import TodayView
from dashboard.orders.transfer import TransferView
from dashboard.state import AppState
from data.changes import ChangeFeed
from data.orders import EditorPolicy, Orders

from .helpers import eventually


@pytest.fixture
def make_state(db, tables):
    def make(user="ops@example.com", editors=("ops@example.com",)):
        return OrdersState(AppState(user=user), Orders(db, tables, EditorPolicy(editors)))
    return make


def first_row(grid: OrdersGrid) -> dict:
    return grid.table.table.value.iloc[0].to_dict()


def test_an_editor_edits_a_cell_and_the_row_shows_the_new_version(make_state):
    grid = OrdersGrid(state=make_state())
    row = first_row(grid)
    after = grid._edit(row, "notes", "ring twice")
    assert after["notes"] == "ring twice" and after["version"] == row["version"] + 1
    assert grid.notice.endswith(f": notes saved (version {after['version']}).") and grid.error == ""


def test_saving_the_same_cell_twice_says_so_twice(make_state):
    """A line that read the same after the second save would send the page nothing new: the person
    could not tell it happened (the load test's people waited for it in vain)."""
    grid = OrdersGrid(state=make_state())
    row = first_row(grid)
    after = grid._edit(row, "notes", "ring twice")
    said = grid.notice
    grid._edit(after, "notes", "ring three times")
    assert grid.notice != said and grid.notice.endswith(f"(version {after['version'] + 1}).")


@pytest.fixture
def live_grid(db, tables):
    """An editor's grid following the real change feed (LISTENing on its own connection)."""
    feed = ChangeFeed(db).start()
    deadline = time.monotonic() + 10
    while not feed.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    state = OrdersState(AppState(user="ops@example.com"),
                        Orders(db, tables, EditorPolicy(("ops@example.com",)), feed=feed), feed)
    yield OrdersGrid(state=state)
    state.stop_following()
    feed.stop()


def as_colleague(db, tables, sql: str, **params) -> None:
    """A change committed by someone else (plain SQL, as ana@example.com)."""
    with db.transaction("colleague") as conn:
        conn.execute(text("SELECT set_config('app.user', 'ana@example.com', true)"))
        conn.execute(text(sql.format(orders=tables.orders)), params)


def marked_rows(grid: OrdersGrid) -> set[int]:
    return {int(r) for r, cells in (grid.table.table._get_style_data().get("data") or {}).items() if cells}


def test_a_colleague_s_change_shows_in_my_open_page_within_two_seconds(live_grid, db, tables):
    """Ana changes an order on my page with plain SQL: the row shows it within 2 s, the changed cell
    is marked and a line says who changed what and when; my other rows are untouched."""
    grid = live_grid
    order_id = int(first_row(grid)["order_id"])
    others = grid.table.table.value.iloc[1:].copy()
    as_colleague(db, tables, "UPDATE {orders} SET notes = 'Ana rang the customer' WHERE order_id = :id", id=order_id)
    assert eventually(lambda: grid.live != "")            # set once the row is patched (the feed's thread)
    assert first_row(grid)["notes"] == "Ana rang the customer" and first_row(grid)["modified_by"] == "ana@example.com"
    assert grid.live.startswith(f"#{order_id}: notes") and "changed by ana@example.com at " in grid.live
    assert marked_rows(grid) == {0}
    pd.testing.assert_frame_equal(grid.table.table.value.iloc[1:], others)
    assert grid.new_orders == 0 and not grid.changed_elsewhere


def test_a_second_update_keeps_the_first_one_s_cells_flashing_until_their_animation_ends(live_grid, db, tables,
                                                                                        monkeypatch):
    """Each update sends the table's styles whole: a browser that receives two at once (a busy
    server) must still flash the first update's cells, until their animation is over."""
    grid = live_grid
    grid.LIVE_EVERY = 0.0
    first, second = (int(grid.table.table.value["order_id"].iloc[i]) for i in (0, 1))
    as_colleague(db, tables, "UPDATE {orders} SET notes = 'first' WHERE order_id = :id", id=first)
    assert eventually(lambda: marked_rows(grid) == {0})
    as_colleague(db, tables, "UPDATE {orders} SET notes = 'second' WHERE order_id = :id", id=second)
    assert eventually(lambda: first_row(grid)["notes"] == "first" and marked_rows(grid) == {0, 1})
    monkeypatch.setattr("dashboard.widgets.LIVE_CHANGE_SECONDS", 0.0)     # both animations are over
    as_colleague(db, tables, "UPDATE {orders} SET notes = 'third' WHERE order_id = :id", id=first)
    assert eventually(lambda: first_row(grid)["notes"] == "third")
    assert marked_rows(grid) == set()


def test_my_stale_edit_of_a_cell_that_just_changed_is_a_conflict_not_an_overwrite(live_grid, db, tables):
    """I was typing in a cell when Ana's change to it arrived: my save is checked against what I
    saw before it, so hers is kept and I am told, with the choice to re-apply mine."""
    grid = live_grid
    frame = grid.table.table.value
    order_id = int(frame["order_id"].iloc[0])
    as_colleague(db, tables, "UPDATE {orders} SET notes = 'Ana: fragile' WHERE order_id = :id", id=order_id)
    assert eventually(lambda: first_row(grid)["notes"] == "Ana: fragile")
    frame.at[frame.index[0], "notes"] = "mine: leave at the door"         # what the browser sends
    grid.table._edited(SimpleNamespace(column="notes", row=0, value="mine: leave at the door", old=None))
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id", {"id": order_id}) == "Ana: fragile"
    assert grid.chooser.visible and "ana@example.com" in grid.chooser.table.object
    grid.chooser.choose({"notes": MINE})                                   # having seen hers, I choose mine
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id",
                     {"id": order_id}) == "mine: leave at the door"


def test_a_colleague_s_value_that_lands_before_my_typed_one_is_not_saved_as_mine(live_grid, db, tables):
    """Ana's change reaches my row, then my edit is handled on a worker thread before what I typed
    has arrived: the handler waits for my value, never takes hers for it, and my save is a
    conflict that re-applies what I typed."""
    grid = live_grid
    frame = grid.table.table.value
    order_id = int(frame["order_id"].iloc[0])
    as_colleague(db, tables, "UPDATE {orders} SET notes = 'Ana: fragile' WHERE order_id = :id", id=order_id)
    assert eventually(lambda: first_row(grid)["notes"] == "Ana: fragile")

    def typed_value_arrives():
        time.sleep(0.2)
        frame.at[frame.index[0], "notes"] = "mine: typed"
    threading.Thread(target=typed_value_arrives).start()
    handler = threading.Thread(target=grid.table._edited, args=(SimpleNamespace(column="notes", row=0, old=None),))
    handler.start()
    handler.join()
    assert grid.chooser.visible and "mine: typed" in grid.chooser.table.object
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id", {"id": order_id}) == "Ana: fragile"
    grid.chooser.choose({"notes": MINE})
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id", {"id": order_id}) == "mine: typed"


def test_a_row_i_clicked_into_is_left_alone_until_my_edit_is_handled(live_grid, db, tables):
    """The browser drops a cell's editor when its row is updated under it: a row I clicked into
    keeps what it showed while Ana's change arrives; my save is then a conflict, and the row shows
    her value."""
    grid = live_grid
    frame = grid.table.table.value
    order_id = int(frame["order_id"].iloc[0])
    grid.table._clicked(SimpleNamespace(row=0, column="notes"))
    as_colleague(db, tables, "UPDATE {orders} SET notes = 'Ana: fragile' WHERE order_id = :id", id=order_id)
    assert eventually(lambda: order_id in grid.table.held)
    assert first_row(grid)["notes"] != "Ana: fragile"
    frame.at[frame.index[0], "notes"] = "mine: typed while she saved"
    grid.table._edited(SimpleNamespace(column="notes", row=0, value="mine: typed while she saved", old=None))
    assert grid.chooser.visible and first_row(grid)["notes"] == "Ana: fragile"
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id", {"id": order_id}) == "Ana: fragile"


def test_my_own_edit_is_not_news(live_grid, db, tables):
    """My save reaches my grid through the feed too: nothing is marked and no line speaks of it."""
    grid = live_grid
    grid._edit(first_row(grid), "notes", "my own change")
    assert eventually(lambda: grid.state.feed_version() >= 2)      # my process's news of it, then the database's
    time.sleep(0.3)
    assert grid.live == "" and marked_rows(grid) == set()


def test_new_orders_matching_my_filters_are_announced_not_pushed_in(live_grid, db, tables):
    """Two new orders, one of them of a status my filter hides: the grid says "1 new order" and
    keeps its rows until I ask to see it."""
    grid = live_grid
    grid.table._on_filter(SimpleNamespace(new=[{"field": "status", "value": ["pending"]}]))
    shown = list(grid.table.table.value["order_id"])
    customer = db.scalar("c", f"SELECT customer_id FROM {tables.customers} LIMIT 1")
    as_colleague(db, tables, "INSERT INTO {orders} (customer_id, status, shipping_address) "
                             "VALUES (:c, 'pending', 'Dock 1'), (:c, 'confirmed', 'Dock 2')", c=customer)
    assert eventually(lambda: grid.new_orders == 1)
    assert list(grid.table.table.value["order_id"]) == shown
    grid.reload()
    assert grid.new_orders == 0 and grid.table.table.value["order_id"].iloc[0] > max(shown)


def test_the_pager_reaches_next_last_and_previous_pages_by_seeking(make_state, db, tables):
    """A person pages on, jumps to the last page and steps back: each page shows the orders that
    counting from the newest gives, and the caption says which rows they are."""
    grid = OrdersGrid(state=make_state())
    newest_first = [r["order_id"] for r in db.rows("all", f"SELECT order_id FROM {tables.orders} "
                                                          "ORDER BY created_at DESC, order_id DESC")]
    pager, size = grid.table.pages, 100
    for index in (1, 2, pager.count - 1, pager.count - 2, 0):
        pager.value = index
        start = index * size
        assert list(grid.table.table.value["order_id"]) == newest_first[start:start + size]
        assert grid.table.caption.object == (f"Rows {start + 1:,}–{min(start + size, len(newest_first)):,} "
                                             f"of {len(newest_first):,}")
    assert grid.table.page.bookmark.page == 1


def test_an_edit_handled_before_its_data_arrives_saves_what_was_typed(make_state, db, tables):
    """With a thread pool Panel can run the edit callback before the cell's new data lands, with an
    `old` value left from an earlier page: the typed value is still the one saved, once."""
    grid = OrdersGrid(state=make_state())
    grid.table.pages.value = 1
    frame = grid.table.table.value
    order_id = int(frame["order_id"].iloc[3])
    event = SimpleNamespace(column="notes", row=3, value=frame["notes"].iloc[3], old="a note from page one")

    def data_arrives():
        time.sleep(0.2)
        frame.at[frame.index[3], "notes"] = "typed late"
    threading.Thread(target=data_arrives).start()
    handler = threading.Thread(target=grid.table._edited, args=(event,))
    handler.start()
    handler.join()
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id", {"id": order_id}) == "typed late"
    assert re.fullmatch(rf"Order {order_id}: notes saved \(version \d+\)\.", grid.notice)
    assert db.scalar("a", f"SELECT count(*) FROM {tables.audit_log} WHERE order_id = :id AND new_value = 'typed late'",
                     {"id": order_id}) == 1


def test_an_edit_that_changes_nothing_saves_nothing(make_state, db, tables):
    grid = OrdersGrid(state=make_state())
    row = first_row(grid)
    grid.table._edited(SimpleNamespace(column="notes", row=0, value=row["notes"], old="something else"))
    assert grid.notice == "" and db.scalar("v", f"SELECT version FROM {tables.orders} WHERE order_id = :id",
                                           {"id": int(row["order_id"])}) == row["version"]


def test_an_edit_whose_data_never_arrives_says_so_and_saves_nothing(make_state, db, tables):
    """On a worker thread the handler waits for the typed value; if it never lands, the person is
    told, and the cell goes back to what is saved (the browser still shows what was typed)."""
    grid = OrdersGrid(state=make_state())
    row = first_row(grid)
    event = SimpleNamespace(column="notes", row=0, value=row["notes"], old=None)
    handler = threading.Thread(target=grid.table._edited, args=(event,))
    handler.start()
    handler.join()
    assert "did not reach the server, so nothing was saved" in grid.table.message
    assert grid.notice == "" and db.scalar("v", f"SELECT version FROM {tables.orders} WHERE order_id = :id",
                                           {"id": int(row["order_id"])}) == row["version"]


def test_a_refused_edit_keeps_the_old_value_and_says_why(make_state):
    grid = OrdersGrid(state=make_state())
    row = first_row(grid)
    assert grid._edit(row, "discount", "-3") is None
    assert grid.error == f"Order {row['order_id']}: Discount cannot be negative. Nothing was saved."


def test_a_conflict_shows_original_theirs_and_mine_and_writes_nothing_until_i_choose(make_state, db, tables):
    grid = OrdersGrid(state=make_state())
    row = grid._edit(first_row(grid), "notes", "as I loaded it")       # the row as my screen shows it
    with db.transaction("other") as conn:
        conn.execute(text("SELECT set_config('app.user', 'kim@example.com', true)"))
        conn.execute(text(f"UPDATE {tables.orders} SET notes = 'kim was first' WHERE order_id = :id"),
                     {"id": row["order_id"]})
    shown = grid._edit(row, "notes", "mine")
    assert shown["notes"] == "kim was first", "the row shows the current values"
    table = grid.chooser.table.object
    assert grid.chooser.visible and "kim@example.com" in table
    where = [table.index(v) for v in ("as I loaded it", "kim was first", "mine")]
    assert where == sorted(where), "original, theirs, mine, side by side"
    assert grid.chooser.use_mine.visible and grid.chooser.keep_theirs.visible
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id", {"id": row["order_id"]}) == \
        "kim was first"
    grid.chooser.choose({"notes": MINE})
    assert db.scalar("n", f"SELECT notes FROM {tables.orders} WHERE order_id = :id", {"id": row["order_id"]}) == "mine"
    assert not grid.chooser.visible and re.search(r": notes saved \(version \d+\)\.$", grid.notice)
    assert first_row(grid)["notes"] == "mine"


def test_keeping_theirs_writes_nothing(make_state, db, tables):
    grid = OrdersGrid(state=make_state())
    row = first_row(grid)
    with db.transaction("other") as conn:
        conn.execute(text("SELECT set_config('app.user', 'kim@example.com', true)"))
        conn.execute(text(f"UPDATE {tables.orders} SET notes = 'kim was first' WHERE order_id = :id"),
                     {"id": row["order_id"]})
    grid._edit(row, "notes", "mine")
    version = db.scalar("v", f"SELECT version FROM {tables.orders} WHERE order_id = :id", {"id": row["order_id"]})
    grid.chooser.choose({"notes": THEIRS})
    assert db.scalar("v", f"SELECT version FROM {tables.orders} WHERE order_id = :id", {"id": row["order_id"]}) == version
    assert grid.notice == f"Order {row['order_id']}: kept as it is; nothing was saved." and not grid.chooser.visible


def test_a_viewer_sees_a_read_only_grid(make_state):
    grid = OrdersGrid(state=make_state(user="viewer@example.com"))
    assert grid.table.table.disabled and not grid.new_order.visible
    assert grid.bulk_apply.disabled and grid.bulk_cancel.disabled


def test_bulk_refusal_lists_each_refused_order(make_state, db, tables):
    grid = OrdersGrid(state=make_state())
    grid.table.table.filters = [{"field": "status", "type": "in", "value": ["delivered"]}]
    keys = list(grid.table.table.value["order_id"].iloc[:3])
    grid.table.selected_keys = keys
    grid._bulk("shipped")
    assert "Nothing was changed: 3 of the 3 selected orders were refused." in grid.problems.object
    assert all(f"Order {k}" in grid.problems.object for k in keys)
    grid._bulk("returned")
    assert grid.notice == "3 orders set to returned."


def test_the_form_marks_wrong_fields_and_saves_nothing(make_state, db, tables):
    state = make_state()
    order_id = db.scalar("p", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' LIMIT 1")
    form = OrderForm(state=state, order_id=order_id)
    form.customer_email.value = "not an address"
    form.discount.value = "-1"
    before = db.scalar("v", f"SELECT version FROM {tables.orders} WHERE order_id = :i", {"i": order_id})
    form._save()
    assert form.customer_email.error_state and "not an e-mail" in form.customer_email.helper_text
    assert form.discount.error_state and "cannot be negative" in form.discount.helper_text
    assert "Nothing was saved" in form.error
    assert db.scalar("v", f"SELECT version FROM {tables.orders} WHERE order_id = :i", {"i": order_id}) == before


def test_the_form_saves_a_status_change_and_shows_history(make_state, db, tables):
    state = make_state()
    order_id = db.scalar("p", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' LIMIT 1")
    form = OrderForm(state=state, order_id=order_id)
    assert form.status.options == ["pending", "confirmed", "cancelled"]
    form.status.value = "confirmed"
    form._save()
    assert form.notice.startswith(f"Order {order_id} saved") and form.error == ""
    history = form._history_view()                  # the History tab, opened
    assert list(history.statuses.value["To"])[0] == "confirmed"                 # newest first
    changes = history.audit.value
    assert (changes["Who"].iloc[0], changes["What"].iloc[0], changes["Before"].iloc[0], changes["After"].iloc[0]) == \
        ("ops@example.com", "status", "pending", "confirmed")
    assert changes["When"].is_monotonic_decreasing


def test_an_order_s_history_opens_the_batch_that_changed_it_where_it_can_be_undone(make_state, db, tables):
    state = make_state()
    order_id = db.scalar("p", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' ORDER BY order_id LIMIT 1")
    state.orders.set_status(state.user, [(order_id, "pending")], "confirmed")
    [batch] = state.orders.recent_batches(state.user, limit=1)
    history = OrderForm(state=state, order_id=order_id)._history_view()
    changes = history.audit.value
    assert changes["Batch"].iloc[0] == f"status change {batch.batch_id[:8]}"
    state.order = order_id                                                   # the form is open
    history._open_batch(SimpleNamespace(row=0, column="Batch"))
    assert (state.order, state.tab, state.batch) == (None, "import", batch.batch_id)
    view = TransferView(state=state)
    assert view.batches.choice.value == batch.batch_id and not view.batches.undo.disabled


def test_the_form_sends_only_what_the_person_changed(make_state, db, tables):
    """A colleague renames the customer while the form is open; the person edits only the notes:
    the colleague's change stays."""
    state = make_state()
    order_id = db.scalar("p", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' LIMIT 1")
    form = OrderForm(state=state, order_id=order_id)
    with db.transaction("colleague") as conn:
        conn.execute(text(f"UPDATE {tables.customers} SET name = 'Renamed By A Colleague' WHERE customer_id = "
                          f"(SELECT customer_id FROM {tables.orders} WHERE order_id = :id)"), {"id": order_id})
    form.notes.value = "leave at the door"
    assert [e.field for e in form.edits()] == ["notes"]
    form._save()
    assert form.error == "" and "saved" in form.notice
    order = state.orders.order(order_id)
    assert (order["name"], order["notes"]) == ("Renamed By A Colleague", "leave at the door")


def test_the_form_keeps_what_i_typed_and_lets_me_choose_per_field_when_a_colleague_changed_the_same(
        make_state, db, tables):
    """Kim changed the notes and the fee while I had the form open; I changed both and the address.
    Nothing is written until I choose: mine for the notes, hers for the fee; my address goes with it."""
    state = make_state()
    order_id = db.scalar("p", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' LIMIT 1")
    form = OrderForm(state=state, order_id=order_id)
    with db.transaction("colleague") as conn:
        conn.execute(text("SELECT set_config('app.user', 'kim@example.com', true)"))
        conn.execute(text(f"UPDATE {tables.orders} SET notes = 'kim was first', shipping_fee = 7.25 "
                          "WHERE order_id = :id"), {"id": order_id})
    form.notes.value, form.shipping_fee.value, form.shipping_address.value = "mine", "3.00", "1 New Road"
    form._save()
    assert form.chooser.visible and "kim@example.com" in form.chooser.table.object
    assert "Your other changes (Shipping address)" in form.chooser.table.object
    assert form.notes.value == "mine", "what I typed stays on screen while I choose"
    assert state.orders.order(order_id)["notes"] == "kim was first"
    assert set(form.chooser._choice_of) == {"notes", "shipping_fee"} and form.chooser.save_choices.visible
    form.chooser._choice_of["notes"].value = MINE
    form.chooser.save_choices.clicks += 1
    order = state.orders.order(order_id)
    assert (order["notes"], float(order["shipping_fee"]), order["shipping_address"]) == ("mine", 7.25, "1 New Road")
    assert "saved" in form.notice and form.notes.value == "mine" and form.shipping_fee.value == "7.25"


def test_saving_an_unchanged_form_writes_nothing(make_state, db, tables):
    state = make_state()
    order_id = db.scalar("p", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' LIMIT 1")
    version = state.orders.order(order_id)["version"]
    form = OrderForm(state=state, order_id=order_id)
    form._save()
    assert "Nothing has changed" in form.notice and state.orders.order(order_id)["version"] == version


def test_a_link_to_an_order_that_does_not_exist_shows_a_message_and_no_form(make_state):
    form = OrderForm(state=make_state(), order_id=987654321)
    assert form.missing and "There is no order 987654321" in form.error
    panel = form.__panel__()
    assert not any(isinstance(c, type(form.save)) for c in panel.select()), "nothing to save"
    form._save()
    form._cancel()                        # neither raises nor writes


def test_a_new_order_from_the_form(make_state, db, tables):
    state = make_state()
    form = OrderForm(state=state, order_id=0)
    form.customer_mode.value = "New customer"
    form.customer_name.value, form.customer_email.value = "Iris Berg", "iris.berg@example.net"
    form.shipping_address.value = "5 Lake Street"
    form._add_line()
    form._save()
    assert state.order is not None and state.order > 0, "the form reopens on the new order"
    assert db.scalar("c", f"SELECT c.email FROM {tables.orders} o JOIN {tables.customers} c USING (customer_id) "
                          "WHERE o.order_id = :i", {"i": state.order}) == "iris.berg@example.net"


def test_import_preview_then_apply(make_state, db, tables):
    view = TransferView(state=make_state())
    ids = [r["order_id"] for r in db.rows("ids", f"SELECT order_id FROM {tables.orders} WHERE status = 'shipped' LIMIT 3")]
    view.upload.value = ("order_id,status\n" + "\n".join(f"{i},delivered" for i in ids) + "\n").encode()
    assert "3 rows</b>: 3 valid" in view.summary.object and not view.apply.disabled
    view._apply()
    assert view.notice == "3 orders updated in one transaction."
    view.upload.value = b"order_id,colour\n1,red\n"
    assert "Unknown column(s) colour" in view.error and view.apply.disabled


def test_today_cards_follow_the_data(make_state):
    state = make_state()
    view = TodayView(state=state)
    summary = state.orders.today()
    assert f"{summary['orders']:,}" in view.cards.pane.object
    assert isinstance(view.top_quantity.value, pd.DataFrame)


@pytest.mark.parametrize("typed, says", [("ana\x00", "control or invisible characters"), ("²", "")])
def test_a_search_that_is_not_plain_text_is_explained_and_never_lists_every_order(make_state, typed, says):
    state = make_state()
    grid = OrdersGrid(state=state)
    state.search = typed
    assert says in grid.table.message
    if not says:
        assert grid.table.page.total == 0, "a superscript digit is not an order number: nothing matches"


def test_an_editor_undoes_a_bulk_change_leaving_out_the_order_a_colleague_moved_on(make_state, db, tables):
    """Three orders confirmed by mistake: one has moved on since, so the undo names it and writes
    nothing; left out, the other two go back to pending, and the list says the batch was undone."""
    state = make_state()
    pending = [r["order_id"] for r in db.rows("p", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' "
                                                    "ORDER BY order_id LIMIT 3")]
    state.orders.set_status(state.user, [(i, "pending") for i in pending], "confirmed")
    as_colleague(db, tables, "UPDATE {orders} SET status = 'processing' WHERE order_id = :id", id=pending[2])
    view = TransferView(state=state)
    undo = view.batches
    label = next(iter(undo.choice.options))
    assert "status change · 3 orders" in label and undo.choice.value == undo.choice.options[label]
    undo.undo.clicks += 1
    assert f"Order {pending[2]}" in undo.refusals.object and "ana@example.com" in undo.refusals.object
    assert undo.undo_others.visible and "leave out 1 order" in undo.undo_others.label
    undo.undo_others.clicks += 1
    assert undo.notice == "Batch undone: 2 orders put back in one transaction, 1 order left out."
    assert {r["status"] for r in db.rows("s", f"SELECT status FROM {tables.orders} WHERE order_id = ANY(:ids)",
                                         {"ids": pending[:2]})} == {"pending"}
    assert any(label.endswith("(undone)") for label in undo.choice.options) and undo.undo.disabled


def test_a_stale_edit_of_another_field_merges_and_says_with_whose_change(make_state, db, tables):
    """Ana confirmed the order after my grid and my form read it; I change the notes: my change is
    applied on top of hers, hers is kept, and I am told whose change mine merged with."""
    state = make_state()
    grid = OrdersGrid(state=state)
    row, other = first_row(grid), grid.table.table.value.iloc[1].to_dict()
    form = OrderForm(state=state, order_id=int(other["order_id"]))
    as_colleague(db, tables, "UPDATE {orders} SET shipping_address = 'Dock 9' WHERE order_id IN (:a, :b)",
                 a=int(row["order_id"]), b=int(other["order_id"]))
    after = grid._edit(row, "notes", "merged from the grid")
    assert grid.notice == (f"Order {row['order_id']}: notes saved (version {after['version']}), on top of changes made since you loaded it by "
                           "ana@example.com (shipping_address).")
    form.notes.value = "merged from the form"
    form._save()
    assert form.notice.endswith("notes, on top of changes made since you opened it by ana@example.com "
                                "(shipping_address).")
    stored = db.rows("o", f"SELECT shipping_address, notes FROM {tables.orders} WHERE order_id IN (:a, :b) "
                          "ORDER BY order_id", {"a": int(row["order_id"]), "b": int(other["order_id"])})
    assert sorted(stored, key=lambda r: r["notes"]) == [{"shipping_address": "Dock 9", "notes": "merged from the form"},
                                                        {"shipping_address": "Dock 9", "notes": "merged from the grid"}]
