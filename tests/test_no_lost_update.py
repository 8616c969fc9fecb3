"""No lost update, ever: three people work on the same few orders at once through every path (a
grid cell, the order form, a bulk status change, a CSV import) in orders hypothesis chooses, each
acting on what their own screen showed when they last loaded it. Afterwards the audit log must
show that

- every value the app said was saved was stored, by that person, by that action;
- every value it replaced was the one that person's screen showed (so nobody's value was lost);
- nothing was written by an action the app said was refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboard.orders.form import OrderForm
from dashboard.orders.grid import TITLES, OrdersGrid
from dashboard.orders.state import OrdersState
from dashboard.state import AppState
from data.order_rules import same_value
from data.orders import EditorPolicy, Orders

PEOPLE = ("ana@example.com", "bo@example.com", "cy@example.com")
NOTES = ("", "ring twice", "gift", "fragile", "leave at door")
NAMES = ("Ana Lima", "Bo Berg", "Cy Chen")
FEES = ("0.00", "4.99", "9.50")
STATUS_STEPS = {"pending": "confirmed", "confirmed": "processing", "processing": "shipped"}


@dataclass
class Claim:
    """What the app told a person it saved (field -> value), what their screen showed in those
    fields, and the audit ids the action's writes must lie between."""
    who: str
    order_id: int
    values: dict
    seen: dict
    first: int = 0
    last: int = 0


@dataclass
class Ledger:
    claims: list[Claim] = field(default_factory=list)
    refused: list[Claim] = field(default_factory=list)


def audit_rows(db, tables, after: int) -> list[dict]:
    return db.rows("audit", f"SELECT audit_id, order_id, entity, entity_key, field, old_value, new_value, changed_by "
                            f"FROM {tables.audit_log} WHERE audit_id > :a ORDER BY audit_id", {"a": after})


def last_audit(db, tables) -> int:
    return db.scalar("last", f"SELECT coalesce(max(audit_id), 0) FROM {tables.audit_log}")


class Person:
    def __init__(self, who: str, orders: Orders, order_ids: list[int]):
        self.who = who
        self.state = OrdersState(AppState(user=who), orders)
        self.grid = OrdersGrid(state=self.state)
        self.grid.table.query = replace(self.grid.table.query, filters=(("order_id", f"<={max(order_ids)}"),))
        self.grid.table.refresh()
        self.forms: dict[int, OrderForm] = {}
        self.imports: dict[int, object] = {}

    def row(self, order_id: int) -> tuple[int, dict] | None:
        position = self.grid.table.position_of(order_id)
        return None if position is None else (position, dict(self.grid.table._shown[position]))


def act(person: Person, step: tuple) -> tuple[str, Claim] | None:
    """Do one step as the person would; what the app then said: ('saved' | 'refused', claim)."""
    kind, order_id, choice = step
    if kind == "reload":
        person.grid.table.refresh()
    elif kind == "open form":
        person.forms[order_id] = OrderForm(state=person.state, order_id=order_id)
    elif kind == "cell":
        shown = person.row(order_id)
        if shown is None:
            return None
        position, row = shown
        column, value = (("notes", NOTES[choice % len(NOTES)]) if choice % 3 == 0 else
                         ("customer", NAMES[choice % len(NAMES)]) if choice % 3 == 1 else
                         ("shipping_fee", FEES[choice % len(FEES)]))
        person.grid.param.update(notice="", error="")
        after = person.grid._edit(row, column, value)
        if after is not None:
            person.grid.table.replace_row(position, after)
        claim = Claim(person.who, order_id, {column: value}, {column: row[column]})
        # "notes saved." or "notes saved, on top of changes made since you loaded it by …"
        return ("saved" if f": {TITLES[column].lower()} saved" in person.grid.notice else "refused"), claim
    elif kind == "form":
        form = person.forms.get(order_id)
        if form is None or form.missing:
            return None
        form.notes.value = NOTES[choice % len(NOTES)]
        if choice % 2:
            form.customer_name.value = NAMES[choice % len(NAMES)]
        edits = form.edits()
        form._save()
        claim = Claim(person.who, order_id, {e.field: e.new for e in edits}, {e.field: e.seen for e in edits})
        return ("saved" if "saved (version" in form.notice else "refused"), claim
    elif kind == "bulk":
        shown = person.row(order_id)
        if shown is None or shown[1]["status"] not in STATUS_STEPS:
            return None
        person.grid.table.selected_keys = [order_id]
        status = STATUS_STEPS[shown[1]["status"]]
        person.grid.param.update(notice="", error="")
        person.grid._bulk(status)
        claim = Claim(person.who, order_id, {"status": status}, {"status": shown[1]["status"]})
        return ("saved" if person.grid.notice.endswith(f"set to {status}.") else "refused"), claim
    elif kind == "preview import":
        person.imports[order_id] = person.state.orders.preview_import(
            f"order_id,notes\n{order_id},imported {choice}\n".encode())
    elif kind == "apply import":
        preview = person.imports.pop(order_id, None)
        if preview is None or not preview.valid or not preview.rows[0].changes:
            return None
        seen, new = preview.rows[0].changes["notes"]
        claim = Claim(person.who, order_id, {"notes": new}, {"notes": seen})
        try:
            person.state.orders.apply_import(person.who, preview)
        except Exception:
            return "refused", claim
        return "saved", claim
    return None


STEP_KINDS = ("reload", "open form", "cell", "form", "bulk", "preview import", "apply import")


@pytest.fixture
def three_orders(db, tables):
    ids = [r["order_id"] for r in db.rows("ids", f"SELECT order_id FROM {tables.orders} WHERE status = 'pending' "
                                                 "ORDER BY order_id LIMIT 3")]
    with db.transaction("narrow") as conn:      # the grid shows exactly these (order_id <= the largest)
        conn.exec_driver_sql(f"UPDATE {tables.orders} SET status = 'cancelled' WHERE order_id < {max(ids)} "
                             f"AND order_id NOT IN ({', '.join(map(str, ids))}) AND status <> 'cancelled'")
    return ids


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_no_confirmed_value_is_ever_lost(db, tables, three_orders, data):
    orders = Orders(db, tables, EditorPolicy(("*",)))
    start = last_audit(db, tables)
    people = [Person(who, orders, three_orders) for who in PEOPLE]
    ledger = Ledger()
    steps = data.draw(st.lists(st.tuples(st.sampled_from(range(len(PEOPLE))), st.sampled_from(STEP_KINDS),
                                         st.sampled_from(three_orders), st.integers(0, 11)),
                               min_size=4, max_size=14), label="steps")
    for who, kind, order_id, choice in steps:
        first = last_audit(db, tables)
        said = act(people[who], (kind, order_id, choice))
        if said is not None:
            outcome, claim = said
            claim.first, claim.last = first, last_audit(db, tables)
            (ledger.claims if outcome == "saved" else ledger.refused).append(claim)

    audit = audit_rows(db, tables, start)
    for claim in ledger.claims:
        written = {(a["field"] if a["entity"] != "customers" else "customer"): a for a in audit
                   if claim.first < a["audit_id"] <= claim.last and a["changed_by"] == claim.who}
        for name, value in claim.values.items():
            key = "customer" if name in ("customer", "name") else name
            if same_value(name, value, claim.seen.get(name)):
                continue                                    # nothing to change, nothing written
            assert key in written, f"the app said {claim} was saved, but the audit has {list(written)}"
            assert same_value(name, written[key]["new_value"], value), (claim, written[key])
            assert same_value(name, written[key]["old_value"], claim.seen[name]), \
                f"{claim.who} replaced {written[key]['old_value']!r}, which their screen did not show " \
                f"(it showed {claim.seen[name]!r})"
    for claim in ledger.refused:
        written = [a for a in audit if claim.first < a["audit_id"] <= claim.last]
        assert written == [], f"refused, yet written: {claim} {written}"


def test_money_compares_as_people_read_it():
    assert same_value("shipping_fee", 4.99, Decimal("4.99")) and same_value("shipping_fee", "4.990", "4.99")
    assert not same_value("shipping_fee", "4.99", "4.98") and not same_value("shipping_fee", "abc", "abc")
    assert same_value("notes", None, "") and not same_value("notes", "a", "a ")
