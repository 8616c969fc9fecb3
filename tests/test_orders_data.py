"""Orders: every write path's rules, conflicts, all-or-nothing bulk and import, permissions,
today's figures against pandas, and the change feed, on a real PostgreSQL."""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from decimal import Decimal

import pandas as pd
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from data.changes import ANYTHING, CHANNEL, KEPT_BURSTS, ChangeFeed, Changes, listen
from data.errors import Category, PermissionDenied, ValidationError
from data.order_rules import STATUSES, TRANSITIONS, clean_customer_field, clean_order_field
from data.order_rules import Edit
from data.orders import BulkRefused, EditorPolicy, NewCustomer, OrderConflict, OrderDraft, Orders, csv_lines
from data.orders.reads import orders_listing
from data.paging import PageQuery
from data.settings import load_settings
from data.tables import Tables

EDITOR = "ops@example.com"
ROW = {"status": "pending", "items_subtotal": Decimal("100.00"), "discount": Decimal("0"),
       "shipping_fee": Decimal("5.00"), "shipping_address": "1 Main St", "notes": ""}


@pytest.fixture
def orders(db, tables):
    return Orders(db, tables, EditorPolicy((EDITOR,)))


def order_row(db, tables, order_id):
    return db.rows("row", f"SELECT * FROM {tables.orders} WHERE order_id = :id", {"id": order_id})[0]


def audit_count(db, tables, order_id=None):
    where = "" if order_id is None else "WHERE order_id = :id"
    return db.scalar("audit", f"SELECT count(*) FROM {tables.audit_log} {where}", {"id": order_id})


def seen_now(orders, order_id, field):
    """What a person who loaded the order just now sees in `field`."""
    if field == "items":
        return [(r.sku, r.quantity, r.unit_price) for r in orders.items(order_id).itertuples()]
    order = orders.order(order_id)
    return order["name" if field == "customer" else field] if field != "version" else order["version"]


def change(orders, user, order_id, field, value):
    """One field changed by someone who saw the order as it is now."""
    return orders.save(user, order_id, [Edit(field, seen_now(orders, order_id, field), value)])


def an_order(db, tables, status):
    return db.rows("pick", f"SELECT order_id, version, status, shipping_fee FROM {tables.orders} WHERE status = :s "
                           "ORDER BY order_id LIMIT 1", {"s": status})[0]


# -- the rules, as a table ------------------------------------------------------------------

@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("new", STATUSES)
def test_every_status_transition(current, new):
    if new == current or new in TRANSITIONS[current]:
        assert clean_order_field("status", new, {**ROW, "status": current}) == new
    else:
        with pytest.raises(ValidationError) as caught:
            clean_order_field("status", new, {**ROW, "status": current})
        assert f"cannot become {new}" in caught.value.message


@pytest.mark.parametrize("field, value, expected", [
    ("discount", "10", Decimal("10.00")), ("discount", "$1,0.5", Decimal("10.50")), ("discount", 0, Decimal("0.00")),
    ("discount", "105.00", Decimal("105.00")),
    ("shipping_fee", "4.99", Decimal("4.99")), ("shipping_fee", 0.0, Decimal("0.00")),
    ("shipping_address", "  12 Harbour Street ", "12 Harbour Street"),
    ("notes", "", ""), ("notes", "Leave at the door", "Leave at the door"),
    ("status", " Confirmed ", "confirmed"),
])
def test_good_values(field, value, expected):
    assert clean_order_field(field, value, ROW) == expected


@pytest.mark.parametrize("field, value, reason", [
    ("discount", "-1", "cannot be negative"), ("discount", "abc", "must be a number"),
    ("discount", "", "is required"), ("discount", float("nan"), "is required"), ("discount", "1.005", "two decimals"),
    ("discount", "105.01", "cannot exceed"), ("discount", "1e9", "cannot be more than"),
    ("discount", "Infinity", "must be a number"),
    ("shipping_fee", "-0.01", "cannot be negative"), ("shipping_fee", "five", "must be a number"),
    ("shipping_address", "", "is required"), ("shipping_address", "x" * 301, "limited to 300"),
    ("notes", "x" * 2001, "limited to 2000"), ("notes", "bell\x07", "control characters"),
    ("status", "lost", "is not a status"), ("status", "'; DROP TABLE orders; --", "is not a status"),
    ("version", "2", "cannot be edited"), ("total_amount", "1", "cannot be edited"),
])
def test_bad_values_are_refused_with_a_reason(field, value, reason):
    with pytest.raises(ValidationError) as caught:
        clean_order_field(field, value, ROW)
    assert reason in caught.value.message


@pytest.mark.parametrize("field, value, ok", [
    ("email", "Ana@Example.com", "ana@example.com"), ("email", "not-an-email", None), ("email", "", None),
    ("email", "a@b", None), ("name", "  Ana Silva ", "Ana Silva"), ("name", "", None), ("name", "x" * 121, None),
    ("address", "", ""), ("customer_id", "C1", None),
])
def test_customer_fields(field, value, ok):
    if ok is None:
        with pytest.raises(ValidationError):
            clean_customer_field(field, value)
    else:
        assert clean_customer_field(field, value) == ok


# -- single edits ---------------------------------------------------------------------------

def test_a_valid_edit_is_saved_versioned_and_audited(db, tables, orders):
    target = an_order(db, tables, "pending")
    before = audit_count(db, tables, target["order_id"])
    row = change(orders, EDITOR, target["order_id"], "status", "confirmed")
    assert row["status"] == "confirmed" and row["version"] == target["version"] + 1
    assert row["modified_by"] == EDITOR
    audit = db.rows("audit", f"SELECT field, old_value, new_value, changed_by, action, version FROM {tables.audit_log} "
                             "WHERE order_id = :id ORDER BY audit_id", {"id": target["order_id"]})[before:]
    assert audit == [{"field": "status", "old_value": "pending", "new_value": "confirmed", "changed_by": EDITOR,
                      "action": "edit", "version": target["version"] + 1}]
    history = db.rows("h", f"SELECT from_status, to_status, changed_by FROM {tables.order_status_history} "
                           "WHERE order_id = :id ORDER BY history_id DESC LIMIT 1", {"id": target["order_id"]})
    assert history == [{"from_status": "pending", "to_status": "confirmed", "changed_by": EDITOR}]


@pytest.mark.parametrize("field, value", [("status", "delivered"), ("discount", "-5"), ("discount", "99999"),
                                          ("shipping_address", ""), ("email", "nope"), ("version", "9")])
def test_an_invalid_edit_writes_nothing(db, tables, orders, field, value):
    target = an_order(db, tables, "pending")
    before_row, before_audit = order_row(db, tables, target["order_id"]), audit_count(db, tables)
    with pytest.raises(ValidationError) as caught:
        change(orders, EDITOR, target["order_id"], field, value)
    assert caught.value.category is Category.VALIDATION
    assert order_row(db, tables, target["order_id"]) == before_row and audit_count(db, tables) == before_audit


def test_customer_details_edit_updates_the_customer(db, tables, orders):
    target = an_order(db, tables, "delivered")
    row = change(orders, EDITOR, target["order_id"], "customer", "Renamed Person")
    assert row["customer"] == "Renamed Person"
    taken = db.scalar("other", f"SELECT email FROM {tables.customers} WHERE customer_id <> "
                              f"(SELECT customer_id FROM {tables.orders} WHERE order_id = :id) LIMIT 1",
                      {"id": target["order_id"]})
    with pytest.raises(ValidationError, match="already belongs"):
        change(orders, EDITOR, target["order_id"], "email", taken.upper())


# -- who may write --------------------------------------------------------------------------

def test_a_viewer_is_refused_by_the_data_layer(db, tables, orders):
    target = an_order(db, tables, "pending")
    before = order_row(db, tables, target["order_id"])
    for attempt in (lambda: change(orders, "viewer@example.com", target["order_id"], "notes", "x"),
                    lambda: orders.set_status("viewer@example.com", [(target["order_id"], "pending")], "confirmed"),
                    lambda: orders.create_order("viewer@example.com", OrderDraft("C0000001", None, (("ELE-10001", 1, 5),),
                                                                                 "1 Main St"))):
        with pytest.raises(PermissionDenied) as caught:
            attempt()
        assert caught.value.category is Category.PERMISSION and "may view orders but not change" in caught.value.message
    assert order_row(db, tables, target["order_id"]) == before


def test_everyone_may_edit_with_a_star():
    assert EditorPolicy(("*",)).can_edit("anyone@example.com")
    assert not EditorPolicy(()).can_edit("anyone@example.com")
    assert EditorPolicy(("ops@example.com",)).can_edit("OPS@example.com")


# -- conflicts ------------------------------------------------------------------------------

def test_second_of_two_sessions_editing_the_same_order_is_a_conflict(db, tables):
    alice, bob = (Orders(db, tables, EditorPolicy(("*",))) for _ in range(2))
    target = an_order(db, tables, "pending")
    seen = seen_now(alice, target["order_id"], "notes")         # both loaded the same row
    alice.save("alice@example.com", target["order_id"], [Edit("notes", seen, "alice was here")])
    with pytest.raises(OrderConflict) as caught:
        bob.save("bob@example.com", target["order_id"], [Edit("notes", seen, "bob overwrites")])
    conflict = caught.value
    assert conflict.category is Category.CONFLICT and "alice@example.com" in conflict.message
    assert [(c["field"], c["old_value"], c["new_value"], c["changed_by"]) for c in conflict.changes] == \
        [("notes", seen, "alice was here", "alice@example.com")]
    assert conflict.current["notes"] == "alice was here" and conflict.current["version"] == target["version"] + 1
    assert order_row(db, tables, target["order_id"])["notes"] == "alice was here"
    # Re-applying over what is there now works.
    bob.save("bob@example.com", target["order_id"], [Edit("notes", conflict.current["notes"], "bob overwrites")])
    assert order_row(db, tables, target["order_id"])["notes"] == "bob overwrites"


@pytest.mark.parametrize("field, first, second", [("customer", "Ana First", "Bo Second"),
                                                  ("email", "first@example.com", "second@example.com")])
def test_customer_fields_are_compared_with_what_was_seen_too(db, tables, field, first, second):
    alice, bob = (Orders(db, tables, EditorPolicy(("*",))) for _ in range(2))
    target = an_order(db, tables, "pending")
    seen = seen_now(alice, target["order_id"], field)
    alice.save("alice@example.com", target["order_id"], [Edit(field, seen, first)])
    with pytest.raises(OrderConflict) as caught:
        bob.save("bob@example.com", target["order_id"], [Edit(field, seen, second)])
    assert caught.value.changes[0]["changed_by"] == "alice@example.com"
    assert seen_now(alice, target["order_id"], field) == first


def test_a_change_to_another_field_is_kept_and_mine_applied(db, tables):
    alice, bob = (Orders(db, tables, EditorPolicy(("*",))) for _ in range(2))
    target = an_order(db, tables, "pending")
    name, notes = (seen_now(alice, target["order_id"], f) for f in ("customer", "notes"))
    alice.save("alice@example.com", target["order_id"], [Edit("customer", name, "Changed By Alice")])
    bob.save("bob@example.com", target["order_id"], [Edit("notes", notes, "bob's note")])
    assert (seen_now(bob, target["order_id"], "customer"), seen_now(bob, target["order_id"], "notes")) == \
        ("Changed By Alice", "bob's note"), "only what Bob changed was written"


def test_a_change_made_with_plain_sql_is_a_conflict_too(pg, db, tables, database_name, orders):
    target = an_order(db, tables, "pending")
    with psycopg.connect(pg.admin_dsn(database_name), autocommit=True) as outside:
        outside.execute(f"UPDATE {tables.orders} SET shipping_fee = 42 WHERE order_id = %s", (target["order_id"],))
    with pytest.raises(OrderConflict) as caught:
        orders.save(EDITOR, target["order_id"], [Edit("shipping_fee", target["shipping_fee"], "1")])
    assert caught.value.changes[0]["changed_by"] == "postgres (outside the app)"
    assert caught.value.changes[0]["field"] == "shipping_fee"
    assert order_row(db, tables, target["order_id"])["shipping_fee"] == Decimal("42.00")


# -- bulk -----------------------------------------------------------------------------------

def thousand_targets(db, tables):
    rows = db.rows("targets", f"SELECT order_id, version, status FROM {tables.orders} "
                              "WHERE status = 'delivered' ORDER BY order_id LIMIT 1000")
    assert len(rows) == 1000
    return rows


def test_bulk_of_1000_with_one_bad_row_writes_nothing(db, tables, orders):
    rows = thousand_targets(db, tables)
    targets = [(r["order_id"], r["status"]) for r in rows]
    targets[500] = (targets[500][0], "shipped")                # one row the person saw with another status
    before = audit_count(db, tables)
    with pytest.raises(BulkRefused) as caught:
        orders.set_status(EDITOR, targets, "returned")
    assert list(caught.value.reasons) == [str(targets[500][0])]
    assert "after you loaded it" in caught.value.reasons[str(targets[500][0])][0]
    assert audit_count(db, tables) == before
    assert db.scalar("n", f"SELECT count(*) FROM {tables.orders} WHERE status = 'returned' AND order_id = ANY(:ids)",
                     {"ids": [t[0] for t in targets]}) == 0


def test_bulk_refuses_impossible_transitions_with_reasons(db, tables, orders):
    pending, delivered = an_order(db, tables, "pending"), an_order(db, tables, "delivered")
    with pytest.raises(BulkRefused) as caught:
        orders.set_status(EDITOR, [(pending["order_id"], "pending"), (delivered["order_id"], "delivered")], "shipped")
    assert caught.value.reasons == {
        str(pending["order_id"]): ["An order that is pending cannot become shipped; it can go to confirmed or cancelled."],
        str(delivered["order_id"]): ["An order that is delivered cannot become shipped; it can go to returned."]}


def test_bulk_of_1000_applies_in_one_batch_and_the_audit_matches(db, tables, orders):
    rows = thousand_targets(db, tables)
    before = audit_count(db, tables)
    assert orders.set_status(EDITOR, [(r["order_id"], r["status"]) for r in rows], "returned") == 1000
    audit = db.frame("audit", f"SELECT order_id, field, old_value, new_value, batch_id, action FROM {tables.audit_log} "
                              "ORDER BY audit_id")[before:]
    assert len(audit) == 1000 and audit["batch_id"].nunique() == 1 and set(audit["action"]) == {"bulk"}
    assert set(audit["field"]) == {"status"} and set(audit["old_value"]) == {"delivered"}
    assert sorted(audit["order_id"]) == sorted(r["order_id"] for r in rows)


# -- creating -------------------------------------------------------------------------------

def test_create_an_order_for_a_new_customer(db, tables, orders):
    draft = OrderDraft(None, NewCustomer("Nadia Haddad", "Nadia.Haddad@example.org", "9 Bridge Street"),
                       (("ELE-10001", 2, "10.50"), ("HOM-10031", "1", 4)), "9 Bridge Street",
                       shipping_fee="4.99", discount="1")
    order_id = orders.create_order(EDITOR, draft)
    order = orders.order(order_id)
    assert order["status"] == "pending" and order["email"] == "nadia.haddad@example.org"
    assert order["items_subtotal"] == Decimal("25.00") and order["total_amount"] == Decimal("28.99")
    assert order["item_count"] == 3 and list(orders.items(order_id)["sku"]) == ["ELE-10001", "HOM-10031"]
    assert order["customer_id"] == f"C{db.scalar('max', f'SELECT max(substr(customer_id, 2)::int) FROM {tables.customers}'):07d}"
    history = orders.status_history(order_id)
    assert list(history["to_status"]) == ["pending"] and history["changed_by"].iloc[0] == EDITOR


@pytest.mark.parametrize("draft, reason", [
    (OrderDraft("C0000001", None, (), "1 Main St"), "at least one item"),
    (OrderDraft("C0000001", None, (("NOPE-1", 1, 1),), "1 Main St"), "no active product with SKU 'NOPE-1'"),
    (OrderDraft("C0000001", None, (("ELE-10001", 0, 1),), "1 Main St"), "between 1 and 999"),
    (OrderDraft("C0000001", None, (("ELE-10001", "1.5", 1),), "1 Main St"), "whole number"),
    (OrderDraft("C0000001", None, (("ELE-10001", 1, -1),), "1 Main St"), "cannot be negative"),
    (OrderDraft("C0000001", None, (("ELE-10001", 1, 1), ("ELE-10001", 2, 1)), "1 Main St"), "appear once"),
    (OrderDraft("C0000001", None, (("ELE-10001", 1, 10),), "1 Main St", discount="50"), "cannot exceed"),
    (OrderDraft("C0000001", None, (("ELE-10001", 1, 10),), ""), "Shipping address is required"),
    (OrderDraft(None, NewCustomer("", "x@example.com"), (("ELE-10001", 1, 10),), "1 Main St"), "Name is required"),
    (OrderDraft(None, NewCustomer("Ann", "not-mail"), (("ELE-10001", 1, 10),), "1 Main St"), "not an e-mail"),
    (OrderDraft(None, None, (("ELE-10001", 1, 10),), "1 Main St"), "Choose a customer"),
    (OrderDraft("C9999999", None, (("ELE-10001", 1, 10),), "1 Main St"), "no customer C9999999"),
])
def test_bad_new_orders_are_refused_and_nothing_is_written(db, tables, orders, draft, reason):
    before = db.scalar("n", f"SELECT count(*) FROM {tables.orders}")
    with pytest.raises(ValidationError) as caught:
        orders.create_order(EDITOR, draft)
    assert reason in caught.value.message
    assert db.scalar("n", f"SELECT count(*) FROM {tables.orders}") == before


# -- the order form ---------------------------------------------------------------------------

def test_form_saves_items_fields_and_customer_in_one_transaction(db, tables, orders):
    target = an_order(db, tables, "pending")
    order_id = target["order_id"]
    lines = [(r.sku, r.quantity, r.unit_price) for r in orders.items(order_id).itertuples()]
    new_sku = next(sku for sku in ("BOO-10183", "BOO-10184") if sku != lines[0][0])
    seen = {f: seen_now(orders, order_id, f) for f in ("items", "discount", "status", "notes", "address")}
    lines = lines[:1] + [(new_sku, 3, "7.25")]
    new = {"items": lines, "discount": "2", "status": "confirmed", "notes": "gift", "address": "77 Queen Street"}
    orders.save(EDITOR, order_id, [Edit(f, seen[f], new[f]) for f in new])
    saved = orders.order(order_id)
    assert saved["status"] == "confirmed" and saved["notes"] == "gift" and saved["address"] == "77 Queen Street"
    items = orders.items(order_id)
    assert list(items["sku"]) == [lines[0][0], new_sku]
    assert saved["items_subtotal"] == Decimal(str(round(sum(items["subtotal"]), 2)))
    assert saved["discount"] == Decimal("2.00")


def test_form_with_any_bad_field_changes_nothing(db, tables, orders):
    target = an_order(db, tables, "pending")
    before_row, before_items = order_row(db, tables, target["order_id"]), orders.items(target["order_id"])
    new = {"items": [("ELE-10001", 2, "5")], "notes": "ok", "status": "delivered", "email": "broken"}
    with pytest.raises(ValidationError) as caught:
        orders.save(EDITOR, target["order_id"], [Edit(f, seen_now(orders, target["order_id"], f), v)
                                                 for f, v in new.items()])
    assert "cannot become delivered" in caught.value.message and "not an e-mail" in caught.value.message
    assert order_row(db, tables, target["order_id"]) == before_row
    pd.testing.assert_frame_equal(orders.items(target["order_id"]), before_items)


# -- CSV import and export ------------------------------------------------------------------

def csv_of(rows, header="order_id,status,notes"):
    return (header + "\n" + "\n".join(rows) + "\n").encode()


def test_import_of_1000_with_one_bad_row_is_all_or_nothing(db, tables, orders):
    targets = thousand_targets(db, tables)
    lines = [f"{r['order_id']},returned,imported" for r in targets]
    lines[321] = f"{targets[321]['order_id']},pending,imported"         # delivered -> pending is not allowed
    preview = orders.preview_import(csv_of(lines))
    frame = preview.frame()
    assert not preview.valid and frame["valid"].sum() == 999
    bad = frame[~frame["valid"]].iloc[0]
    assert bad["line"] == 323 and "cannot become pending" in bad["reasons"]
    before = audit_count(db, tables)
    with pytest.raises(ValidationError):
        orders.apply_import(EDITOR, preview)
    assert audit_count(db, tables) == before
    lines[321] = f"{targets[321]['order_id']},returned,imported"
    preview = orders.preview_import(csv_of(lines))
    assert preview.valid and orders.apply_import(EDITOR, preview) == 1000
    audit = db.frame("audit", f"SELECT field, batch_id, action FROM {tables.audit_log} ORDER BY audit_id")[before:]
    assert len(audit) == 2000 and audit["batch_id"].nunique() == 1 and set(audit["action"]) == {"import"}
    assert sorted(audit["field"].unique()) == ["notes", "status"]


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b"status,notes\nconfirmed,x\n", "needs an order_id column"),
    (b"order_id,total_amount\n1,5\n", "Unknown column(s) total_amount"),
    (b"order_id,status\n", "no rows"),
    ("order_id,notes\n1,caf\xe9\n".encode("latin-1"), "not UTF-8"),
])
def test_unusable_import_files_are_explained(orders, data, problem):
    preview = orders.preview_import(data)
    assert problem in preview.problem and not preview.valid


@pytest.mark.parametrize("line, reason", [
    ("abc,confirmed", "is not a number"), ("99999999,confirmed", "does not exist"),
    ("{pending},teleported", "is not a status"), ("{pending},shipped", "cannot become shipped"),
])
def test_bad_import_rows_get_reasons(db, tables, orders, line, reason):
    pending = an_order(db, tables, "pending")["order_id"]
    preview = orders.preview_import(csv_of([line.format(pending=pending)], header="order_id,status"))
    assert reason in preview.frame()["reasons"].iloc[0]


def test_import_checks_the_exported_version_and_duplicates(db, tables, orders):
    target = an_order(db, tables, "pending")
    rows = [f"{target['order_id']},{target['version'] + 1},x", f"{target['order_id']},{target['version']},y"]
    frame = orders.preview_import(csv_of(rows, header="order_id,version,notes")).frame()
    assert f"version {target['version'] + 1} is newer than order {target['order_id']}'s" in frame["reasons"].iloc[0]
    assert "appears more than once" in frame["reasons"].iloc[1]


def test_import_rechecks_rows_changed_after_the_preview(db, tables, orders):
    target = an_order(db, tables, "pending")
    preview = orders.preview_import(csv_of([f"{target['order_id']},confirmed,x"]))
    assert preview.valid
    orders.set_status(EDITOR, [(target["order_id"], "pending")], "cancelled")
    with pytest.raises(BulkRefused) as caught:
        orders.apply_import(EDITOR, preview)
    assert "status was changed by ops@example.com after you loaded it (you saw pending, it is now cancelled)" in \
        caught.value.reasons["line 2"][0]
    assert orders.order(target["order_id"])["status"] == "cancelled"


def test_export_streams_every_matching_order(db, tables, orders):
    filters = (("status", ["delivered"]),)
    rows = list(orders.export_rows(search=None, filters=filters))
    page = orders.page(PageQuery(size=10, filters=filters))
    assert len(rows) == page.total and all(r[3] == "delivered" for r in rows)
    text_ = "".join(csv_lines(iter(rows)))
    exported = pd.read_csv(__import__("io").StringIO(text_))
    assert len(exported) == len(rows) and list(exported.columns)[:4] == ["order_id", "customer", "email", "status"]
    # An export round-trips through the import preview: no changes, all valid.
    assert orders.preview_import(exported[["order_id", "version", "status"]].head(50).to_csv(index=False).encode()).valid


# -- the grid ---------------------------------------------------------------------------------

def test_grid_pages_sorts_filters_and_searches_in_sql(db, tables, orders):
    raw = db.frame("raw", f"SELECT o.order_id, o.status, o.total_amount, c.name, c.email FROM {tables.orders} o "
                          f"JOIN {tables.customers} c USING (customer_id)")
    query = PageQuery(page=2, size=25, sort=(("total", True),), filters=(("status", ["shipped", "delivered"]),
                                                                          ("total", ">50")))
    page = orders.page(query)
    expected = raw[raw["status"].isin(["shipped", "delivered"]) & (raw["total_amount"] > 50)] \
        .sort_values(["total_amount", "order_id"], ascending=[False, False])
    assert page.total == len(expected) and list(page.rows["order_id"]) == list(expected["order_id"].iloc[25:50])
    name = raw["name"].iloc[0].split()[1]
    found = orders.page(PageQuery(size=500), search=name.lower())
    assert found.total == raw["name"].str.contains(name, case=False).sum() + \
        raw["email"].str.contains(name, case=False).where(~raw["name"].str.contains(name, case=False), False).sum()
    by_id = orders.page(PageQuery(size=5), search=f"#{raw['order_id'].iloc[10]}")
    assert list(by_id.rows["order_id"]) == [raw["order_id"].iloc[10]]
    assert orders.page(PageQuery(size=5), search="%' OR 1=1 --").total == 0


SORTABLE = [name for name, column in orders_listing(Tables.from_settings(load_settings({}))).columns.items() if column.sortable]
MOVES = st.one_of(st.sampled_from(["first", "last", "same"]), st.integers(-3, 3).filter(bool))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(column=st.sampled_from(SORTABLE), descending=st.booleans(), only_pending=st.booleans(),
       moves=st.lists(MOVES, min_size=1, max_size=8))
def test_any_walk_through_the_pages_shows_what_reading_from_the_start_would(db, tables, orders, column, descending,
                                                                             only_pending, moves):
    """Pages are found by seeking from the page shown (next, previous, a few on, the same, first,
    last); each shows exactly the rows that counting from the start of the sorted orders gives."""
    filters = (("status", ["pending"]),) if only_pending else ()
    query = PageQuery(size=40, sort=((column, descending),), filters=filters)
    where = "WHERE o.status = 'pending'" if only_pending else ""
    every = [r["order_id"] for r in db.rows("truth", f"SELECT o.order_id FROM {orders.listing.source} {where} "
                                                    f"ORDER BY {orders.listing.order_by(query)}")]
    page = orders.page(query)
    for move in moves:
        target = {"first": 1, "last": page.pages, "same": page.page}.get(move) or page.page + move
        page = orders.page(replace(query, page=max(1, min(target, page.pages)), bookmark=page.bookmark))
        start = (page.page - 1) * page.size
        assert list(page.rows["order_id"]) == every[start:start + page.size], (move, page.page)


def test_grid_date_filter_and_large_counts_are_estimated(db, tables, orders):
    today = orders.page(PageQuery(size=5, filters=(("created_at", "today"),)))
    assert today.total == db.scalar("t", f"SELECT count(*) FROM {tables.orders} WHERE created_at >= CURRENT_DATE "
                                         "AND created_at < CURRENT_DATE + 1")
    capped = orders.listing.count(db, "", {}, cap=100)
    assert capped[1] is True and capped[0] > 100


# -- today --------------------------------------------------------------------------------------

def test_today_figures_match_pandas(db, tables, orders):
    raw = db.frame("raw", f"SELECT order_id, status, total_amount, created_at FROM {tables.orders}")
    items = db.frame("items", f"SELECT i.order_id, p.sku, i.quantity, i.subtotal FROM {tables.order_items} i "
                              f"JOIN {tables.products} p USING (product_id)")
    customers = db.frame("c", f"SELECT created_at FROM {tables.customers}")
    summary = orders.today()
    now = pd.Timestamp(summary["as_of"]).tz_localize("UTC")
    created = pd.to_datetime(raw["created_at"], utc=True)
    today = raw[created.dt.date == now.date()]
    yesterday = raw[(created.dt.date == (now - pd.Timedelta(days=1)).date()) & (created.dt.time <= now.time())]
    assert summary["orders"] == len(today) > 0
    assert summary["revenue"] == pytest.approx(today["total_amount"].sum())
    assert summary["orders_yesterday"] == len(yesterday)
    assert summary["revenue_yesterday"] == pytest.approx(yesterday["total_amount"].sum())
    per_product = items[items["order_id"].isin(today["order_id"])].groupby("sku")[["quantity", "subtotal"]].sum()
    top = per_product.reset_index().sort_values(["quantity", "sku"], ascending=[False, True]).head(5)
    assert list(summary["top_by_quantity"]["sku"]) == list(top["sku"])
    statuses = summary["statuses"].set_index("status")["orders"]
    assert statuses.to_dict() == {s: int((today["status"] == s).sum()) for s in STATUSES}
    hours = summary["hours"]
    assert hours[hours["day"] == "today"]["orders"].sum() == len(today)
    assert summary["new_customers"] == int((pd.to_datetime(customers["created_at"], utc=True).dt.date == now.date()).sum())


def test_today_reflects_a_write_at_once(db, tables):
    feed = ChangeFeed(db)
    orders = Orders(db, tables, EditorPolicy(("*",)), feed=feed)
    before = orders.today()["orders"]
    orders.create_order(EDITOR, OrderDraft("C0000001", None, (("ELE-10001", 1, 10),), "1 Main St"))
    assert orders.today()["orders"] == before + 1


def test_change_feed_hears_plain_sql_within_two_seconds(pg, db, tables, database_name):
    feed = ChangeFeed(db).start()
    heard = threading.Event()
    feed.subscribe(lambda version: heard.set())
    deadline = time.monotonic() + 10
    while not feed.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    with psycopg.connect(pg.admin_dsn(database_name), autocommit=True) as outside:
        started = time.monotonic()
        outside.execute(f"UPDATE {tables.orders} SET notes = 'from psql' WHERE order_id = 5")
    assert heard.wait(2.0), "no notification within 2 s"
    assert time.monotonic() - started < 2.0
    feed.stop()


def test_one_connection_listens_for_every_channel_of_a_process(pg, db, tables, database_name):
    """A process follows orders, insights, Refresh and presence on one connection, and each
    channel's news reaches only its own feed."""
    orders_feed, other_feed = listen(db, CHANNEL, "app_other_news")
    heard = {"orders": threading.Event(), "other": threading.Event()}
    orders_feed.subscribe(lambda v: heard["orders"].set())
    other_feed.subscribe(lambda v: heard["other"].set())
    deadline = time.monotonic() + 10
    while not (orders_feed.connected and other_feed.connected) and time.monotonic() < deadline:
        time.sleep(0.05)
    with psycopg.connect(pg.admin_dsn(database_name), autocommit=True) as outside:
        assert outside.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN%%'",
                               (database_name,)).fetchone()[0] == 1
        outside.execute("SELECT pg_notify('app_other_news', '')")
        assert heard["other"].wait(2.0) and not heard["orders"].is_set()
        outside.execute(f"UPDATE {tables.orders} SET notes = 'from psql' WHERE order_id = 6")
        assert heard["orders"].wait(2.0)
    assert orders_feed.changes_since(0).updated == {6} and other_feed.version == 1
    orders_feed.stop()


def test_the_feed_names_the_orders_each_statement_changed(pg, db, tables, database_name):
    """Updates and inserts by plain SQL name their orders; a statement of more than a thousand, or a
    customer renamed (their name is on every row of theirs), says any order may have changed; what
    the feed no longer keeps is "anything" too."""
    feed = ChangeFeed(db, settle=0.05).start()
    deadline = time.monotonic() + 10
    while not feed.connected and time.monotonic() < deadline:
        time.sleep(0.05)

    def after(sql: str) -> Changes:
        version = feed.version
        with psycopg.connect(pg.admin_dsn(database_name), autocommit=True) as outside:
            outside.execute(sql)
        deadline = time.monotonic() + 2
        while feed.version == version and time.monotonic() < deadline:
            time.sleep(0.01)
        return feed.changes_since(version)
    assert after(f"UPDATE {tables.orders} SET notes = 'x' WHERE order_id IN (5, 7)") == Changes(updated=frozenset({5, 7}))
    assert after(f"UPDATE {tables.orders} SET notes = 'y' WHERE order_id <= 1001").updated is None
    customer = db.scalar("c", f"SELECT customer_id FROM {tables.customers} LIMIT 1")
    added = after(f"INSERT INTO {tables.orders} (customer_id) VALUES ('{customer}')")
    assert added.updated == frozenset() and len(added.inserted) == 1
    assert after(f"UPDATE {tables.customers} SET name = name || ' ' WHERE customer_id = '{customer}'") == ANYTHING
    feed.stop()


@pytest.mark.parametrize("payloads, expected", [
    (["orders:update:3,4", "orders:update:4,9"], Changes(updated=frozenset({3, 4, 9}))),
    (["orders:insert:12", "order_items"], Changes(inserted=frozenset({12}))),
    (["orders:update:*", "orders:update:1"], Changes(updated=None)),
    (["customers"], ANYTHING),
    (["orders"], ANYTHING),                           # an older schema's message names nothing
])
def test_change_messages_read_as_the_orders_they_name(payloads, expected):
    assert Changes.parse(payloads) == expected


def test_changes_older_than_the_feed_keeps_are_anything(db):
    feed = ChangeFeed(db)
    for order_id in range(KEPT_BURSTS + 5):
        feed.announce(Changes(updated=frozenset({order_id})))
    assert feed.changes_since(feed.version - 2) == Changes(updated=frozenset({KEPT_BURSTS + 3, KEPT_BURSTS + 4}))
    assert feed.changes_since(2) == ANYTHING


def test_form_consolidates_a_product_found_on_two_lines(db, tables, orders):
    """Data written elsewhere may repeat a product on two lines; saving the form keeps one line for it."""
    target = an_order(db, tables, "pending")
    order_id = target["order_id"]
    first = orders.items(order_id).iloc[0]
    with db.transaction("duplicate_line") as conn:
        conn.execute(text(f"INSERT INTO {tables.order_items} (order_id, line_no, product_id, quantity, unit_price) "
                          f"SELECT order_id, 99, product_id, 1, unit_price FROM {tables.order_items} "
                          "WHERE order_id = :id AND line_no = :line"), {"id": order_id, "line": int(first["line_no"])})
    seen = seen_now(orders, order_id, "items")
    lines = [(r.sku, r.quantity, r.unit_price) for r in orders.items(order_id).drop_duplicates("sku").itertuples()]
    orders.save(EDITOR, order_id, [Edit("items", seen, lines), Edit("discount", orders.order(order_id)["discount"], "0")])
    items = orders.items(order_id)
    assert items["sku"].is_unique and len(items) == len(lines)


@pytest.mark.parametrize("search, total", [("²", 0), ("١٢", 0), ("1_0", 0), ("#12", 1), ("12", 1), ("  #12 ", 1)])
def test_a_search_that_is_not_an_order_number_never_widens_to_every_order(orders, search, total):
    page = orders.page(PageQuery(size=5), search=search)
    assert page.total == total
    if total:
        assert list(page.rows["order_id"]) == [12]


@pytest.mark.parametrize("search, says", [("ana\x00", "control or invisible characters"),
                                          ("a\u200bb", "control or invisible characters"),
                                          ("x" * 201, "type at most 200")])
def test_a_search_that_is_not_plain_text_is_refused_with_a_reason(orders, search, says):
    with pytest.raises(ValidationError) as caught:
        orders.page(PageQuery(size=5), search=search)
    assert says in caught.value.message


def test_import_edge_cases_are_reasons_not_crashes(db, tables, orders):
    """A field over the CSV reader's limit, a repeated column, a row with more fields than the header,
    order numbers Python would read (1_0, Arabic-Indic digits, +5): each is said, nothing crashes."""
    target = an_order(db, tables, "pending")
    big = orders.preview_import(b"order_id,notes\n" + f"{target['order_id']},".encode() + b"x" * 200_000 + b"\n")
    assert "could not be read as CSV at line" in big.problem
    twice = orders.preview_import(csv_of([f"{target['order_id']},x,y"], header="order_id,notes,notes"))
    assert "notes appear more than once" in twice.problem
    extra = orders.preview_import(csv_of([f"{target['order_id']},ok,surprise"], header="order_id,notes"))
    assert "it has 3 fields where the header has 2" in extra.rows[0].reasons[0]
    odd_ids = orders.preview_import(csv_of(["1_0,x", "١٢,x", "+5,x"], header="order_id,notes"))
    assert all("is not a number" in r.reasons[0] for r in odd_ids.rows)


def test_import_judges_fee_and_discount_together_as_the_form_does(db, tables, orders):
    target = an_order(db, tables, "pending")
    order = orders.order(target["order_id"])
    ceiling = order["items_subtotal"] + Decimal("20.00")
    preview = orders.preview_import(csv_of([f"{target['order_id']},20.00,{ceiling}"],
                                           header="order_id,shipping_fee,discount"))
    assert preview.valid, preview.frame().to_dict("records")
    orders.apply_import(EDITOR, preview)
    assert orders.order(target["order_id"])["discount"] == ceiling


def test_import_without_a_version_compares_with_what_the_preview_showed(db, tables, orders):
    target = an_order(db, tables, "pending")
    preview = orders.preview_import(csv_of([f"{target['order_id']},pending,from the file"]))
    colleague = Orders(db, tables, EditorPolicy(("*",)))
    change(colleague, "kim@example.com", target["order_id"], "notes", "kim, after the preview")
    with pytest.raises(BulkRefused) as caught:
        orders.apply_import(EDITOR, preview)
    assert "notes was changed by kim@example.com after you loaded it" in caught.value.reasons["line 2"][0]
    assert orders.order(target["order_id"])["notes"] == "kim, after the preview"


def exported_then_changed_by_kim(db, tables, field: str, value: str) -> dict:
    """An order as a file exported it, then changed by Kim in one field."""
    target = dict(an_order(db, tables, "pending"))
    target.update(db.rows("o", f"SELECT notes, discount FROM {tables.orders} WHERE order_id = :id",
                          {"id": target["order_id"]})[0])
    change(Orders(db, tables, EditorPolicy(("*",))), "kim@example.com", target["order_id"], field, value)
    return target


def test_an_exported_file_merges_with_a_colleague_s_change_to_other_fields(db, tables, orders):
    """My file (exported before Kim changed the notes) confirms the order and leaves the notes as
    they were: the status is applied and Kim's notes are kept; the preview says so."""
    target = exported_then_changed_by_kim(db, tables, "notes", "kim: call first")
    line = f"{target['order_id']},{target['version']},confirmed,{target['notes']}"
    preview = orders.preview_import(csv_of([line], header="order_id,version,status,notes"))
    assert preview.valid
    assert preview.frame()["changes"].iloc[0] == "status: pending → confirmed; notes: kept as kim@example.com changed it since your file"
    assert orders.apply_import(EDITOR, preview) == 1
    after = orders.order(target["order_id"])
    assert (after["status"], after["notes"]) == ("confirmed", "kim: call first")


def test_an_exported_file_that_changes_the_field_a_colleague_changed_is_refused_with_both_values(db, tables, orders):
    target = exported_then_changed_by_kim(db, tables, "notes", "kim: call first")
    line = f"{target['order_id']},{target['version']},mine: leave at the door"
    preview = orders.preview_import(csv_of([line], header="order_id,version,notes"))
    assert not preview.valid
    assert preview.frame()["reasons"].iloc[0] == (
        f"notes was changed by kim@example.com since your file's version {target['version']} "
        "(it is now kim: call first; your file has mine: leave at the door)")
    with pytest.raises(ValidationError):
        orders.apply_import(EDITOR, preview)
    assert orders.order(target["order_id"])["notes"] == "kim: call first"


# -- undoing a batch ----------------------------------------------------------------------

def orders_of_status(db, tables, status: str, count: int) -> list[dict]:
    return db.rows("pick", f"SELECT order_id, status, discount, notes FROM {tables.orders} WHERE status = :s "
                           "ORDER BY order_id LIMIT :n", {"s": status, "n": count})


def statuses(db, tables, order_ids) -> dict[int, str]:
    rows = db.rows("s", f"SELECT order_id, status FROM {tables.orders} WHERE order_id = ANY(:ids)", {"ids": order_ids})
    return {r["order_id"]: r["status"] for r in rows}


def test_a_bulk_status_change_is_undone_as_a_whole_and_the_undo_is_a_batch_too(db, tables, orders):
    targets = orders_of_status(db, tables, "pending", 3)
    ids = [t["order_id"] for t in targets]
    orders.set_status(EDITOR, [(t["order_id"], "pending") for t in targets], "confirmed")
    [latest] = orders.recent_batches(EDITOR, limit=1)
    assert (latest.action, latest.orders, latest.undone) == ("bulk", 3, False)
    assert orders.undo_batch(EDITOR, latest.batch_id) == 3
    assert statuses(db, tables, ids) == dict.fromkeys(ids, "pending")
    undo, bulk = orders.recent_batches(EDITOR, limit=2)
    assert undo.action == f"revert {bulk.batch_id}" and undo.orders == 3 and bulk.undone
    with pytest.raises(ValidationError, match="undone already"):
        orders.undo_batch(EDITOR, bulk.batch_id)
    history = db.rows("h", f"SELECT from_status, to_status FROM {tables.order_status_history} WHERE order_id = :id "
                           "ORDER BY history_id DESC LIMIT 2", {"id": ids[0]})
    assert history == [{"from_status": "confirmed", "to_status": "pending"},
                       {"from_status": "pending", "to_status": "confirmed"}]


def test_an_order_changed_since_the_batch_stops_the_undo_until_it_is_left_out(db, tables, orders):
    targets = orders_of_status(db, tables, "pending", 3)
    ids = [t["order_id"] for t in targets]
    orders.set_status(EDITOR, [(i, "pending") for i in ids], "confirmed")
    [batch] = orders.recent_batches(EDITOR, limit=1)
    with db.transaction("colleague") as conn:                                      # a colleague moved one on
        conn.execute(text("SELECT set_config('app.user', 'ana@example.com', true)"))
        conn.execute(text(f"UPDATE {tables.orders} SET status = 'processing' WHERE order_id = :id"), {"id": ids[1]})
    before = audit_count(db, tables)
    with pytest.raises(BulkRefused) as refused:
        orders.undo_batch(EDITOR, batch.batch_id)
    assert list(refused.value.reasons) == [str(ids[1])]
    assert "changed by ana@example.com" in refused.value.reasons[str(ids[1])][0]
    assert audit_count(db, tables) == before                                       # nothing written
    assert orders.undo_batch(EDITOR, batch.batch_id, leave_out=frozenset({ids[1]})) == 2
    assert statuses(db, tables, ids) == {ids[0]: "pending", ids[1]: "processing", ids[2]: "pending"}


def test_a_status_that_happened_at_the_door_cannot_be_undone(db, tables, orders):
    [order] = orders_of_status(db, tables, "shipped", 1)
    orders.set_status(EDITOR, [(order["order_id"], "shipped")], "delivered")
    [batch] = orders.recent_batches(EDITOR, limit=1)
    with pytest.raises(BulkRefused) as refused:
        orders.undo_batch(EDITOR, batch.batch_id)
    assert "cannot go back to shipped" in refused.value.reasons[str(order["order_id"])][0]
    assert statuses(db, tables, [order["order_id"]]) == {order["order_id"]: "delivered"}


def test_an_import_is_undone_to_the_exact_values_it_replaced(db, tables, orders):
    targets = orders_of_status(db, tables, "pending", 2)
    lines = [f"{t['order_id']},confirmed,imported {i},{t['discount'] + 1}" for i, t in enumerate(targets)]
    preview = orders.preview_import(csv_of(lines, header="order_id,status,notes,discount"))
    assert orders.apply_import(EDITOR, preview) == 2
    [batch] = orders.recent_batches(EDITOR, limit=1)
    assert batch.action == "import" and batch.changes == 6
    assert orders.undo_batch(EDITOR, batch.batch_id) == 2
    after = {r["order_id"]: r for r in orders_of_status(db, tables, "pending", 10**6)}
    for target in targets:
        assert after[target["order_id"]] == target


def test_undo_refuses_what_it_cannot_put_back(db, tables, orders):
    with pytest.raises(ValidationError, match="no such batch"):
        orders.undo_batch(EDITOR, "not-a-batch")
    targets = orders_of_status(db, tables, "pending", 1)
    orders.set_status(EDITOR, [(targets[0]["order_id"], "pending")], "confirmed")
    [batch] = orders.recent_batches(EDITOR, limit=1)
    with pytest.raises(ValidationError, match="left out"):
        orders.undo_batch(EDITOR, batch.batch_id, leave_out=frozenset({targets[0]["order_id"]}))
    assert orders.recent_batches("someone-else@example.com") == []
