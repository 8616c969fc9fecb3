"""Writing orders: one rule for every writer (a grid cell, the order form, a bulk action, an
import, cancelling), and new orders.

Each writer says, per field the person changed, what their screen showed and what they want
(`Edit`). In one transaction the order, its customer and its lines are locked; a field that no
longer holds what was seen is a conflict (who changed it, and when, is said), never overwritten;
only the fields that changed are written, checked against the order as it will be
(`order_rules.final_order`). The schema's triggers bump versions and write the status history and
the audit trail with the user passed in `app.user`.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

from sqlalchemy import Connection, text

from ..editors import EditorPolicy  # noqa: F401 - re-exported: the orders package names it
from ..errors import Category, ConflictError, PermissionDenied, ValidationError
from ..order_rules import (CUSTOMER_COLUMN, EDITABLE, ITEMS, STATUSES, Edit, Item, clean_email, clean_items,
                           clean_money, clean_text, final_order, same_value)
from ..tables import quote



class BulkRefused(ValidationError):
    """Nothing was written: `reasons` says, per order (or CSV line), why it was refused."""

    def __init__(self, reasons: dict[str, list[str]], what: str = "orders"):
        count = len(reasons)
        super().__init__(f"Nothing was changed: {count} of the {what} {'was' if count == 1 else 'were'} refused.")
        self.reasons = reasons



class OrderConflict(ConflictError):
    """A field the person changed no longer holds what they saw. `changes` says, per such field, who
    changed it last and when, what they saw (`old_value`) and what it is now (`new_value`);
    `current` is the grid's row as it is now."""

    def __init__(self, order_id: int, changes: list[dict], current: dict | None):
        people = sorted({c["changed_by"] for c in changes}) or ["someone"]
        fields = ", ".join(dict.fromkeys(c["field"] for c in changes))
        super().__init__(f"Order {order_id}: {fields} was changed by {', '.join(people)} after you loaded it; "
                         "your change was not applied.")
        self.order_id, self.changes, self.current = order_id, changes, current

    @property
    def reason(self) -> str:
        """One line, for a list of refused orders or import lines."""
        return "; ".join(f"{c['field']} was changed by {c['changed_by']} after you loaded it "
                         f"(you saw {_show(c['old_value'])}, it is now {_show(c['new_value'])})" for c in self.changes)



@dataclass(frozen=True)
class NewCustomer:
    name: str
    email: str
    address: str = ""



@dataclass(frozen=True)
class OrderDraft:
    customer_id: str | None
    new_customer: NewCustomer | None
    items: tuple[tuple[str, object, object], ...]     # (sku, quantity, unit price) as typed
    shipping_address: str = ""
    shipping_fee: object = "0"
    discount: object = "0"
    notes: str = ""



def _show(value) -> str:
    return "''" if value in ("", None) else str(value)



def _plain(value):
    """A value as a person reads it in a message (money as 5.00, lines as a count)."""
    if isinstance(value, (list, tuple)):
        return f"{len(value)} line{'s' if len(value) != 1 else ''}"
    return value



class OrderWrites:
    """The write side of `Orders`."""

    @contextmanager
    def _writing(self, name: str, user: str, action: str, batch: str | None = None) -> Iterator[Connection]:
        if not self.policy.can_edit(user):
            self.db.metrics.record_error(Category.PERMISSION)
            raise PermissionDenied(f"{user or 'This user'} may view orders but not change them.")
        with self.db.transaction(name) as conn:
            conn.execute(text("SELECT set_config('app.user', :user, true), set_config('app.action', :action, true), "
                              "set_config('app.batch', :batch, true)"),
                         {"user": user, "action": action, "batch": batch or ""})
            yield conn
        self._caches.clear("orders_today")      # the products an order may hold do not change with it
        if self.feed is not None:
            self.feed.announce()

    def save(self, user: str, order_id: int, edits: list[Edit], *, action: str = "edit") -> dict:
        """Apply one person's edits to one order (a grid cell, the order form). Returns the grid's row
        as it now is. Raises OrderConflict if a field they changed no longer holds what they saw."""
        with self._writing("save_order", user, action) as conn:
            self._apply(conn, order_id, self._lock(conn, [order_id]).get(order_id), edits)
            return self.grid_row(order_id, conn)

    def set_status(self, user: str, targets: list[tuple[int, str]], status: str) -> int:
        """Move every target order (id, the status the person saw) to `status`, all or none."""
        if status not in STATUSES:
            raise ValidationError(f"'{status}' is not a status.")
        if not targets:
            raise ValidationError("Select at least one order.")
        edits = {int(order_id): [Edit("status", seen, status)] for order_id, seen in targets}
        self._apply_all("bulk_set_status", user, "bulk", {str(k): (k, v) for k, v in edits.items()},
                        what=f"{len(targets)} selected orders")
        return len(targets)

    def cancel(self, user: str, targets: list[tuple[int, str]]) -> int:
        return self.set_status(user, targets, "cancelled")

    def _apply_all(self, name: str, user: str, action: str, batch: dict[str, tuple[int, list[Edit]]], *,
                   what: str, undo: bool = False) -> int:
        """Edits to many orders (key -> (order id, edits)) in one transaction and one audited batch:
        all are applied, or none and each refusal is said (BulkRefused). Returns how many changed."""
        batch_id = str(uuid.uuid4())
        reasons: dict[str, list[str]] = {}
        changed = 0
        alike: dict[tuple, list[int]] = {}
        order_ids = [order_id for order_id, _ in batch.values()]
        if len(set(order_ids)) != len(order_ids):
            raise ValueError("a batch names each order once")   # each is checked against the row locked below
        with self._writing(name, user, action, batch_id) as conn:
            locked = self._lock(conn, order_ids)                      # in one lock order: no deadlocks
            for key, (order_id, edits) in batch.items():
                try:
                    changed += self._apply(conn, order_id, locked.get(order_id), edits, alike=alike, undo=undo)
                except OrderConflict as conflict:
                    reasons[key] = [conflict.reason]
                except ValidationError as exc:
                    reasons[key] = [exc.message]
            if reasons:
                raise BulkRefused(reasons, what=what)
            for values, ids in alike.items():
                self._update_order(conn, ids, dict(values))
        return changed

    def _apply(self, conn: Connection, order_id: int, row: dict | None, edits: list[Edit], *,
               alike: dict[tuple, list[int]] | None = None, undo: bool = False) -> bool:
        """The write rule for one order, given its row as locked in this transaction (None if there
        is no such order); True if anything was (or, in `alike`, will be) written. With `alike`, an
        order whose change is a plain update of its own fields is added there (the values -> the
        orders) for the caller to write with the others in one statement: a bulk status change of
        1,000 orders is one UPDATE, not 1,000."""
        unknown = sorted({e.field for e in edits if e.field not in EDITABLE})
        if unknown:
            raise ValidationError(f"{', '.join(unknown)} cannot be edited.")
        if row is None:
            raise ValidationError(f"Order {order_id} does not exist.")
        now = self._now(conn, row, {e.field for e in edits})
        stale = [e for e in edits if not same_value(e.field, e.seen, now[e.field])]
        if stale:
            changes = [{**self._last_change(conn, row, e.field), "field": e.field, "old_value": _plain(e.seen),
                        "new_value": _plain(now[e.field])} for e in stale]
            raise OrderConflict(order_id, changes, self.grid_row(order_id, conn))
        wanted = {e.field: e.new for e in edits if not same_value(e.field, e.new, now[e.field])}
        if not wanted:
            return False
        order, customer, lines = final_order(now, wanted, self.product_skus, undo=undo)
        # Written in an order that keeps discount <= items + shipping true after every statement (the
        # table checks it each time): a lower discount and a higher fee first, then the lines, then the rest.
        first = {k: v for k, v in order.items()
                 if (k == "discount" and v < row[k]) or (k == "shipping_fee" and v > row[k])}
        rest = {k: v for k, v in order.items() if k not in first}
        if alike is not None and not first and lines is None and not customer:
            alike.setdefault(tuple(sorted(rest.items())), []).append(order_id)
            return True
        self._update_order(conn, [order_id], first)
        if lines is not None:
            self._replace_items(conn, order_id, lines)
        self._update_order(conn, [order_id], rest)
        self._update_customer(conn, row["customer_id"], customer)
        return True

    def _now(self, conn: Connection, row: dict, fields: set[str]) -> dict:
        """The order (locked), and, when edited, its customer's fields (locked) and its lines."""
        now = dict(row)
        if fields & set(CUSTOMER_COLUMN):
            customer = conn.execute(text(f"SELECT name, email, address FROM {self.t.customers} "
                                         "WHERE customer_id = :c FOR UPDATE"),
                                    {"c": row["customer_id"]}).mappings().one()
            now.update({field: customer[column] for field, column in CUSTOMER_COLUMN.items()})
        if ITEMS in fields:
            now[ITEMS] = [(r["sku"], r["quantity"], r["unit_price"]) for r in self._lines(conn, row["order_id"])]
        return now

    def _last_change(self, conn: Connection, row: dict, field: str) -> dict:
        """Who changed `field` of the order (or its customer, or its lines) last, and when."""
        if field in CUSTOMER_COLUMN:
            where, params = "entity = 'customers' AND entity_key = :key AND field = :field", {
                "key": row["customer_id"], "field": CUSTOMER_COLUMN[field]}
        elif field == ITEMS:
            where, params = "entity = 'order_items' AND order_id = :id", {"id": row["order_id"]}
        else:
            where, params = "entity = 'orders' AND order_id = :id AND field = :field", {"id": row["order_id"],
                                                                                           "field": field}
        last = conn.execute(text(f"SELECT changed_by, changed_at FROM {self.t.audit_log} WHERE {where} "
                                 "ORDER BY audit_id DESC LIMIT 1"), params).mappings().first()
        return dict(last) if last else {"changed_by": "someone", "changed_at": None}

    def _lock(self, conn: Connection, order_ids: list[int]) -> dict[int, dict]:
        rows = conn.execute(text(f"""
            SELECT order_id, customer_id, status, items_subtotal, discount, shipping_fee, shipping_address,
                   notes, version, modified_by, modified_at
            FROM {self.t.orders} WHERE order_id = ANY(:ids) ORDER BY order_id FOR UPDATE"""),
                            {"ids": order_ids}).mappings().all()
        return {r["order_id"]: dict(r) for r in rows}

    def _lines(self, conn: Connection, order_id: int) -> list[dict]:
        return [dict(r) for r in conn.execute(text(f"""
            SELECT i.line_no, p.sku, i.quantity, i.unit_price FROM {self.t.order_items} i
            JOIN {self.t.products} p ON p.product_id = i.product_id WHERE i.order_id = :id ORDER BY i.line_no"""),
                                              {"id": order_id}).mappings().all()]

    def _update_order(self, conn: Connection, order_ids: list[int], values: dict) -> None:
        if not values:
            return
        assignments = ", ".join(f"{quote(k)} = :{k}" for k in values)
        conn.execute(text(f"UPDATE {self.t.orders} SET {assignments} WHERE order_id = ANY(:order_ids)"),
                     {**values, "order_ids": order_ids})

    def _update_customer(self, conn: Connection, customer_id: str, values: dict) -> None:
        if not values:
            return
        if "email" in values:
            taken = conn.execute(text(f"SELECT customer_id FROM {self.t.customers} "
                                      "WHERE lower(email) = lower(:email) AND customer_id <> :id"),
                                 {"email": values["email"], "id": customer_id}).first()
            if taken:
                raise ValidationError(f"{values['email']} already belongs to another customer ({taken[0]}).")
        assignments = ", ".join(f"{quote(k)} = :{k}" for k in values)
        conn.execute(text(f"UPDATE {self.t.customers} SET {assignments} WHERE customer_id = :customer_id"),
                     {**values, "customer_id": customer_id})

    def _replace_items(self, conn: Connection, order_id: int, items: list[Item]) -> None:
        """Make the order's lines equal to `items`, touching only lines that differ (audited).
        A SKU found on several existing lines keeps its first line; the others are removed."""
        lines = self._lines(conn, order_id)
        wanted = {i.sku: i for i in items}
        kept: set[str] = set()
        for line in lines:
            item = wanted.get(line["sku"])
            if item is None or line["sku"] in kept:
                conn.execute(text(f"DELETE FROM {self.t.order_items} WHERE order_id = :id AND line_no = :line"),
                             {"id": order_id, "line": line["line_no"]})
                continue
            kept.add(line["sku"])
            if (line["quantity"], Decimal(line["unit_price"])) != (item.quantity, item.unit_price):
                conn.execute(text(f"UPDATE {self.t.order_items} SET quantity = :q, unit_price = :p "
                                  "WHERE order_id = :id AND line_no = :line"),
                             {"q": item.quantity, "p": item.unit_price, "id": order_id, "line": line["line_no"]})
        next_line = max((line["line_no"] for line in lines), default=0) + 1
        self._insert_items(conn, order_id, [i for sku, i in wanted.items() if sku not in kept], first_line=next_line)

    def _insert_items(self, conn: Connection, order_id: int, items: list[Item], *, first_line: int = 1) -> None:
        """New lines of an order, numbered from `first_line` (the one place lines are inserted)."""
        products = self.products().set_index("sku")
        for line, item in enumerate(items, start=first_line):
            conn.execute(text(f"INSERT INTO {self.t.order_items} (order_id, line_no, product_id, quantity, "
                              "unit_price) VALUES (:id, :line, :product, :q, :p)"),
                         {"id": order_id, "line": line, "product": products.loc[item.sku, "product_id"],
                          "q": item.quantity, "p": item.unit_price})

    def create_order(self, user: str, draft: OrderDraft) -> int:
        problems: list[str] = []
        try:
            items = clean_items(draft.items, self.product_skus())
        except ValidationError as exc:
            problems.append(f"Items: {exc.message}")
            items = []
        try:
            shipping = clean_money(draft.shipping_fee, "Shipping fee")
            discount = clean_money(draft.discount, "Discount")
        except ValidationError as exc:
            problems.append(exc.message)
            shipping = discount = Decimal(0)
        subtotal = sum((i.quantity * i.unit_price for i in items), Decimal(0))
        if discount > subtotal + shipping:
            problems.append(f"The discount ({discount}) cannot exceed the items plus shipping ({subtotal + shipping}).")
        try:
            address = clean_text(draft.shipping_address, "shipping_address", required=True)
            notes = clean_text(draft.notes, "notes")
            customer = self._clean_customer(draft)
        except ValidationError as exc:
            problems.append(exc.message)
        if problems:
            raise ValidationError(" ".join(problems))
        with self._writing("create_order", user, "create") as conn:
            customer_id = draft.customer_id or self._insert_customer(conn, customer)
            if draft.customer_id and not conn.execute(text(f"SELECT 1 FROM {self.t.customers} WHERE customer_id = :c"),
                                                      {"c": customer_id}).first():
                raise ValidationError(f"There is no customer {customer_id}.")
            order_id = conn.execute(text(f"""
                INSERT INTO {self.t.orders} (customer_id, status, items_subtotal, discount, shipping_fee, item_count,
                                             shipping_address, notes, modified_by)
                VALUES (:customer, 'pending', :subtotal, :discount, :shipping, :count, :address, :notes, :user)
                RETURNING order_id"""), {
                "customer": customer_id, "subtotal": subtotal, "discount": discount, "shipping": shipping,
                "count": sum(i.quantity for i in items), "address": address, "notes": notes, "user": user}).scalar()
            self._insert_items(conn, order_id, items)
        return int(order_id)

    def _clean_customer(self, draft: OrderDraft) -> NewCustomer | None:
        if draft.customer_id:
            return None
        if draft.new_customer is None:
            raise ValidationError("Choose a customer or enter a new one.")
        c = draft.new_customer
        return NewCustomer(clean_text(c.name, "name", required=True), clean_email(c.email),
                           clean_text(c.address, "address"))

    def _insert_customer(self, conn: Connection, customer: NewCustomer) -> str:
        taken = conn.execute(text(f"SELECT customer_id FROM {self.t.customers} WHERE lower(email) = lower(:e)"),
                             {"e": customer.email}).first()
        if taken:
            raise ValidationError(f"{customer.email} already belongs to customer {taken[0]}; choose that customer.")
        number = conn.execute(text("SELECT nextval(CAST(:seq AS regclass))"),
                              {"seq": f"{self.t.schema('retail')}.customer_number"}).scalar()
        customer_id = f"C{number:07d}"
        conn.execute(text(f"INSERT INTO {self.t.customers} (customer_id, name, email, address) "
                          "VALUES (:id, :name, :email, :address)"),
                     {"id": customer_id, "name": customer.name, "email": customer.email, "address": customer.address})
        return customer_id

