"""Retail360 orders: the grid's pages, one order's details, every write, CSV in and out, and
today's figures.

Every write is one transaction that checks the signed-in user may edit, locks the rows,
checks the version the user saw (a row changed since is a conflict, never overwritten),
validates with `order_rules`, and applies. The schema's triggers bump versions and write the
status history and the audit trail with the user passed in `app.user`.
"""
from __future__ import annotations

import csv
import io
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator

import pandas as pd
from sqlalchemy import Connection, text

from .cache import Caches, cached
from .changes import ChangeFeed
from .database import Database
from .errors import Category, ConflictError, PermissionDenied, ValidationError
from .order_rules import (CUSTOMER_COLUMN, EDITABLE, ITEMS, ORDER_FIELDS, STATUSES, Edit, Item, allowed_statuses,
                          clean_email, clean_items, clean_money, clean_text, final_order, same_value)
from .paging import (CHOICE, DATE, NUMBER, TEXT, Column, Listing, Page, PageQuery, like_pattern, typed_text,
                     whole_number)
from .spreadsheet import read_cell, safe_cell
from .tables import Tables, quote

MAX_IMPORT_ROWS = 10_000
IMPORT_COLUMNS = ("order_id", "version", *ORDER_FIELDS)
EXPORT_COLUMNS = ("order_id", "customer", "email", "status", "items_subtotal", "discount", "shipping_fee", "total",
                  "item_count", "shipping_address", "notes", "created_at", "modified_at", "modified_by", "version")


class EditorPolicy:
    """Who may change orders: listed e-mails, or '*' for everyone. Everyone else only reads."""

    def __init__(self, editors: tuple[str, ...]):
        self.editors = {e.lower() for e in editors}

    def can_edit(self, user: str) -> bool:
        return "*" in self.editors or (user or "").lower() in self.editors


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


@dataclass
class ImportRow:
    line: int
    order_id: int | None
    changes: dict[str, tuple[object, object]]        # field -> (as the preview showed it, new)
    reasons: list[str]
    version: int | None = None                       # the file's version column, if it has one

    def edits(self) -> list[Edit]:
        return [Edit(name, seen, new) for name, (seen, new) in self.changes.items()]

    @property
    def valid(self) -> bool:
        return not self.reasons


@dataclass
class ImportPreview:
    rows: list[ImportRow]
    problem: str = ""                                 # the whole file is unusable, and why

    @property
    def valid(self) -> bool:
        return not self.problem and bool(self.rows) and all(r.valid for r in self.rows)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "line": r.line, "order_id": r.order_id, "valid": r.valid,
            "changes": "; ".join(f"{k}: {_show(a)} → {_show(b)}" for k, (a, b) in r.changes.items()) or "no change",
            "reasons": "; ".join(r.reasons)} for r in self.rows],
            columns=["line", "order_id", "valid", "changes", "reasons"])


def _show(value) -> str:
    return "''" if value in ("", None) else str(value)


def _plain(value):
    """A value as a person reads it in a message (money as 5.00, lines as a count)."""
    if isinstance(value, (list, tuple)):
        return f"{len(value)} line{'s' if len(value) != 1 else ''}"
    return value


def _header_problem(header: list[str]) -> str:
    """Why an import file's header cannot be used, or ''."""
    if "order_id" not in header:
        return "The file needs an order_id column."
    unknown = [h for h in header if h not in IMPORT_COLUMNS]
    if unknown:
        return f"Unknown column(s) {', '.join(unknown)}; the columns allowed are {', '.join(IMPORT_COLUMNS)}."
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        return f"The column(s) {', '.join(repeated)} appear more than once in the header."
    return ""


class Orders:
    def __init__(self, db: Database, tables: Tables, policy: EditorPolicy, *, timezone: str = "UTC",
                 feed: ChangeFeed | None = None):
        self.db, self.t, self.policy, self.timezone, self.feed = db, tables, policy, timezone, feed
        self._caches = Caches()
        t = tables
        self.listing = Listing(
            name="orders", key="order_id",
            source=f"{t.orders} o JOIN {t.customers} c ON c.customer_id = o.customer_id",
            count_source=f"{t.orders} o",   # every order has exactly one customer (NOT NULL foreign key)
            columns={
                "order_id": Column("o.order_id", NUMBER),
                "customer": Column("c.name", TEXT, joined=True),
                "email": Column("c.email", TEXT, joined=True),
                "status": Column("o.status", CHOICE),
                "total": Column("o.total_amount", NUMBER),
                "items": Column("o.item_count", NUMBER),
                "discount": Column("o.discount", NUMBER),
                "shipping_fee": Column("o.shipping_fee", NUMBER),
                "shipping_address": Column("o.shipping_address", TEXT),
                "notes": Column("o.notes", TEXT),
                "created_at": Column("o.created_at", DATE),
                "modified_at": Column("o.modified_at", DATE),
                "modified_by": Column("o.modified_by", TEXT),
                "version": Column("o.version", NUMBER, sortable=False),
            },
            default_sort=(("created_at", True),))

    # -- reading --------------------------------------------------------------------------

    def _search(self, search: str | None) -> tuple[str, dict]:
        """Free text: an order number (#1234 or 1234), or part of a customer's name or e-mail (trigram
        index). Anything that is not plain text is refused, never taken as "every order"."""
        text_ = typed_text(search or "", "search").lstrip("#").strip()
        if not text_:
            return "", {}
        if (number := whole_number(text_)) is not None:
            return "o.order_id = :search_id", {"search_id": number}
        clause = (f"o.customer_id IN (SELECT customer_id FROM {self.t.customers} "
                  "WHERE name ILIKE :search ESCAPE '\\' OR email ILIKE :search ESCAPE '\\')")
        return clause, {"search": like_pattern(text_)}

    def page(self, query: PageQuery, search: str | None = None) -> Page:
        where, params = self._search(search)
        return self.listing.fetch(self.db, query, where=where, params=params, count_cap=10_000)

    def grid_row(self, order_id: int, conn: Connection | None = None) -> dict | None:
        select = ", ".join(f"{c.sql} AS {quote(n)}" for n, c in self.listing.columns.items())
        sql = f"SELECT {select} FROM {self.listing.source} WHERE o.order_id = :id"
        if conn is not None:
            row = conn.execute(text(sql), {"id": order_id}).mappings().first()
        else:
            row = next(iter(self.db.rows("order_grid_row", sql, {"id": order_id})), None)
        # As the grid holds them: money as floats, like the pages the grid shows.
        return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()} if row else None

    def order(self, order_id: int) -> dict | None:
        """One order with its customer, for the order form."""
        rows = self.db.rows("order", f"""
            SELECT o.order_id, o.customer_id, c.name, c.email, c.address, o.status, o.items_subtotal,
                   o.discount, o.shipping_fee, o.total_amount, o.item_count, o.shipping_address, o.notes,
                   o.created_at, o.modified_at, o.modified_by, o.version
            FROM {self.t.orders} o JOIN {self.t.customers} c ON c.customer_id = o.customer_id
            WHERE o.order_id = :id""", {"id": order_id})
        if not rows:
            return None
        row = rows[0]
        row["allowed_statuses"] = list(allowed_statuses(row["status"]))
        return row

    def items(self, order_id: int) -> pd.DataFrame:
        return self.db.frame("order_items", f"""
            SELECT i.line_no, p.sku, p.name AS product, i.quantity, i.unit_price::float8 AS unit_price,
                   i.subtotal::float8 AS subtotal
            FROM {self.t.order_items} i JOIN {self.t.products} p ON p.product_id = i.product_id
            WHERE i.order_id = :id ORDER BY i.line_no""", {"id": order_id})

    def status_history(self, order_id: int) -> pd.DataFrame:
        return self.db.frame("order_status_history", f"""
            SELECT changed_at, from_status, to_status, changed_by FROM {self.t.order_status_history}
            WHERE order_id = :id ORDER BY changed_at, history_id""", {"id": order_id})

    def audit_trail(self, order_id: int) -> pd.DataFrame:
        return self.db.frame("order_audit", f"""
            SELECT changed_at, changed_by, action, entity, field, old_value, new_value, batch_id
            FROM {self.t.audit_log} WHERE order_id = :id ORDER BY audit_id""", {"id": order_id})

    @cached("products", 300)
    def products(self) -> pd.DataFrame:
        return self.db.frame("products", f"""
            SELECT product_id, sku, name, category, unit_price::float8 AS unit_price
            FROM {self.t.products} WHERE active ORDER BY sku""")

    def find_customers(self, search: str, limit: int = 20) -> pd.DataFrame:
        pattern = like_pattern(typed_text(search, "customer search"))
        return self.db.frame("find_customers", f"""
            SELECT customer_id, name, email, address FROM {self.t.customers}
            WHERE name ILIKE :p ESCAPE '\\' OR email ILIKE :p ESCAPE '\\' ORDER BY name LIMIT :limit""",
                             {"p": pattern, "limit": limit})

    # -- writing --------------------------------------------------------------------------
    #
    # One rule for every writer: each field a person changed is compared with what they saw, and
    # only what they changed is written, checked against the order as it will be, in one
    # transaction; the schema's triggers audit it and bump the order's version.

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
        self._caches.clear()
        if self.feed is not None:
            self.feed.announce()

    def save(self, user: str, order_id: int, edits: list[Edit], *, action: str = "edit") -> dict:
        """Apply one person's edits to one order (a grid cell, the order form). Returns the grid's row
        as it now is. Raises OrderConflict if a field they changed no longer holds what they saw."""
        with self._writing("save_order", user, action) as conn:
            self._apply(conn, order_id, edits)
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
                   what: str, versions: dict[str, int] | None = None) -> int:
        """Edits to many orders (key -> (order id, edits)) in one transaction and one audited batch:
        all are applied, or none and each refusal is said (BulkRefused). Returns how many changed."""
        batch_id = str(uuid.uuid4())
        reasons: dict[str, list[str]] = {}
        changed = 0
        with self._writing(name, user, action, batch_id) as conn:
            self._lock(conn, sorted({order_id for order_id, _ in batch.values()}))   # one lock order: no deadlocks
            for key, (order_id, edits) in batch.items():
                try:
                    expected = (versions or {}).get(key)
                    changed += self._apply(conn, order_id, edits, expected_version=expected)
                except OrderConflict as conflict:
                    reasons[key] = [conflict.reason]
                except ValidationError as exc:
                    reasons[key] = [exc.message]
            if reasons:
                raise BulkRefused(reasons, what=what)
        return changed

    def _apply(self, conn: Connection, order_id: int, edits: list[Edit], *, expected_version: int | None = None) -> bool:
        """The write rule for one order; True if anything was written."""
        unknown = sorted({e.field for e in edits if e.field not in EDITABLE})
        if unknown:
            raise ValidationError(f"{', '.join(unknown)} cannot be edited.")
        row = self._lock(conn, [order_id]).get(order_id)
        if row is None:
            raise ValidationError(f"Order {order_id} does not exist.")
        if expected_version is not None and row["version"] != int(expected_version):
            raise OrderConflict(order_id, [{**self._last_change(conn, row, "version"), "field": "the order",
                                            "old_value": f"version {expected_version}",
                                            "new_value": f"version {row['version']}"}], None)
        now = self._now(conn, row, {e.field for e in edits})
        stale = [e for e in edits if not same_value(e.field, e.seen, now[e.field])]
        if stale:
            changes = [{**self._last_change(conn, row, e.field), "field": e.field, "old_value": _plain(e.seen),
                        "new_value": _plain(now[e.field])} for e in stale]
            raise OrderConflict(order_id, changes, self.grid_row(order_id, conn))
        wanted = {e.field: e.new for e in edits if not same_value(e.field, e.new, now[e.field])}
        if not wanted:
            return False
        order, customer, lines = final_order(now, wanted, set(self.products()["sku"]))
        # Written in an order that keeps discount <= items + shipping true after every statement (the
        # table checks it each time): a lower discount and a higher fee first, then the lines, then the rest.
        first = {k: v for k, v in order.items()
                 if (k == "discount" and v < row[k]) or (k == "shipping_fee" and v > row[k])}
        self._update_order(conn, order_id, first)
        if lines is not None:
            self._replace_items(conn, order_id, lines)
        self._update_order(conn, order_id, {k: v for k, v in order.items() if k not in first})
        self._update_customer(conn, row["customer_id"], customer)
        return True

    def _now(self, conn: Connection, row: dict, fields: set[str]) -> dict:
        """The order (locked), and, when edited, its customer's fields (locked) and its lines."""
        now = dict(row)
        if fields & set(CUSTOMER_COLUMN):
            customer = conn.execute(text(f"SELECT name, email, address FROM {self.t.customers} "
                                         "WHERE customer_id = :c FOR UPDATE"), {"c": row["customer_id"]}).mappings().one()
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
        elif field == "version":
            where, params = "entity = 'orders' AND order_id = :id", {"id": row["order_id"]}
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

    def _update_order(self, conn: Connection, order_id: int, values: dict) -> None:
        if not values:
            return
        assignments = ", ".join(f"{quote(k)} = :{k}" for k in values)
        conn.execute(text(f"UPDATE {self.t.orders} SET {assignments} WHERE order_id = :order_id"),
                     {**values, "order_id": order_id})

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
            items = clean_items(draft.items, set(self.products()["sku"]))
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

    # -- CSV ------------------------------------------------------------------------------

    def preview_import(self, data: bytes) -> ImportPreview:
        """Check a CSV of order updates without writing: each row valid, or its reasons. What each
        row would change is kept with the value the preview showed, which `apply_import` compares with."""
        try:
            content = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return ImportPreview([], "The file is not UTF-8 text; save it as CSV (UTF-8).")
        reader = csv.reader(io.StringIO(content, newline=""))
        try:
            header = [h.strip().lower() for h in next(reader, [])]
            if not any(header):
                return ImportPreview([], "The file is empty.")
            problem = _header_problem(header)
            if problem:
                return ImportPreview([], problem)
            raw_rows = []
            for values in reader:
                if not any(v.strip() for v in values):
                    continue                        # a blank line
                raw_rows.append((reader.line_num, header, [read_cell(v.strip()) for v in values]))
                if len(raw_rows) > MAX_IMPORT_ROWS:
                    return ImportPreview([], f"The file has more than {MAX_IMPORT_ROWS:,} rows; split it.")
        except csv.Error as exc:
            return ImportPreview([], f"The file could not be read as CSV at line {reader.line_num}: {exc}.")
        if not raw_rows:
            return ImportPreview([], "The file has a header but no rows.")
        ids = [whole_number(dict(zip(h, v)).get("order_id", "")) for _, h, v in raw_rows]
        rows = self.db.rows("import_current_orders", f"""
            SELECT order_id, status, items_subtotal, discount, shipping_fee, shipping_address, notes, version
            FROM {self.t.orders} WHERE order_id = ANY(:ids)""", {"ids": [i for i in ids if i is not None]})
        return ImportPreview(self._check_import(raw_rows, {r["order_id"]: r for r in rows}))

    def _check_import(self, raw_rows, current: dict[int, dict]) -> list[ImportRow]:
        checked, seen = [], set()
        skus = set(self.products()["sku"])
        for line, header, values in raw_rows:
            record = dict(zip(header, values))
            reasons, changes, version = [], {}, None
            if len(values) != len(header):
                reasons.append(f"it has {len(values)} fields where the header has {len(header)}")
            order_id = whole_number(record.get("order_id", ""))
            if order_id is None:
                reasons.append(f"order_id '{record.get('order_id', '')}' is not a number")
            elif order_id in seen:
                reasons.append(f"order {order_id} appears more than once")
            elif order_id not in current:
                reasons.append(f"order {order_id} does not exist")
            else:
                seen.add(order_id)
                row = current[order_id]
                if record.get("version"):
                    version = whole_number(record["version"])
                    if version is None:
                        reasons.append(f"version '{record['version']}' is not a whole number")
                    elif version != row["version"]:
                        reasons.append(f"order {order_id} changed since it was exported "
                                       f"(version {version}, now {row['version']})")
                wanted = {name: record[name] for name in ORDER_FIELDS if name in record
                          and (record[name] != "" or name == "notes") and not same_value(name, record[name], row[name])}
                try:
                    order, _, _ = final_order(row, wanted, skus)     # the same rule as the form
                    changes = {name: (row[name], value) for name, value in order.items()
                               if not same_value(name, value, row[name])}
                except ValidationError as exc:
                    reasons.append(exc.message)
            checked.append(ImportRow(line, order_id, changes, reasons, version))
        return checked

    def apply_import(self, user: str, preview: ImportPreview) -> int:
        """Apply a previewed import in one transaction: each change is compared with the value the
        preview showed (and a row with a version column with that version), then checked against
        the order as it will be. All rows or none."""
        if not preview.valid:
            raise ValidationError(preview.problem or "Fix the rows marked invalid before applying.")
        batch = {f"line {r.line}": (r.order_id, r.edits()) for r in preview.rows if r.changes}
        versions = {f"line {r.line}": r.version for r in preview.rows if r.changes and r.version is not None}
        return self._apply_all("import_orders", user, "import", batch, versions=versions,
                               what="rows (the orders changed since the preview)")

    def check_export(self, search: str | None, filters: tuple) -> None:
        """Refuse a search or filter the export cannot use, before anything is streamed: a
        ValidationError whose `parameter` says which."""
        for parameter, check in (("search", lambda: self._search(search)),
                                 ("filters", lambda: self.listing.check(PageQuery(filters=filters)))):
            try:
                check()
            except ValidationError as exc:
                exc.parameter = parameter
                raise

    def export_rows(self, search: str | None = None, filters: tuple = ()) -> Iterator[list]:
        """Every order matching the grid's search and filters, streamed from a server-side cursor."""
        where, params = self._search(search)
        clauses, bound = self.listing.conditions(PageQuery(filters=filters))
        if where:
            clauses.insert(0, where)
        where_sql = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"""
            SELECT o.order_id, c.name, c.email, o.status, o.items_subtotal, o.discount, o.shipping_fee,
                   o.total_amount, o.item_count, o.shipping_address, o.notes, o.created_at, o.modified_at,
                   o.modified_by, o.version
            FROM {self.listing.source} {where_sql} ORDER BY o.order_id"""
        yield from self.db.stream("orders_export", sql, {**params, **bound})

    # -- today ----------------------------------------------------------------------------

    def today(self) -> dict:
        return self._today(self.feed.version if self.feed else 0)

    @cached("orders_today", 60)
    def _today(self, _version: int) -> dict:
        """Today's orders and revenue against the same time yesterday, top products, statuses,
        orders by hour and new customers, in the business time zone."""
        tz = {"tz": self.timezone}
        day = "(created_at AT TIME ZONE :tz)::date"
        today = "(now() AT TIME ZONE :tz)::date"
        yesterday_so_far = (f"{day} = {today} - 1 AND (created_at AT TIME ZONE :tz)::time "
                            f"<= (now() AT TIME ZONE :tz)::time")
        totals = self.db.rows("orders_today", f"""
            SELECT count(*) FILTER (WHERE {day} = {today}) AS orders,
                   coalesce(sum(total_amount) FILTER (WHERE {day} = {today}), 0)::float8 AS revenue,
                   count(*) FILTER (WHERE {yesterday_so_far}) AS orders_yesterday,
                   coalesce(sum(total_amount) FILTER (WHERE {yesterday_so_far}), 0)::float8 AS revenue_yesterday
            FROM {self.t.orders} WHERE created_at >= now() - interval '3 days'""", tz)[0]
        customers = self.db.rows("customers_today", f"""
            SELECT count(*) FILTER (WHERE {day} = {today}) AS new_customers,
                   count(*) FILTER (WHERE {yesterday_so_far}) AS new_customers_yesterday
            FROM {self.t.customers} WHERE created_at >= now() - interval '3 days'""", tz)[0]
        products = self.db.frame("top_products_today", f"""
            SELECT p.sku, p.name, sum(i.quantity)::int AS quantity, sum(i.subtotal)::float8 AS revenue
            FROM {self.t.orders} o JOIN {self.t.order_items} i ON i.order_id = o.order_id
            JOIN {self.t.products} p ON p.product_id = i.product_id
            WHERE o.created_at >= now() - interval '2 days' AND (o.created_at AT TIME ZONE :tz)::date = {today}
            GROUP BY p.sku, p.name""", tz)
        statuses = self.db.frame("statuses_today", f"""
            SELECT status, count(*) AS orders FROM {self.t.orders}
            WHERE created_at >= now() - interval '2 days' AND {day} = {today} GROUP BY status""", tz)
        hours = self.db.frame("orders_by_hour", f"""
            SELECT CASE WHEN {day} = {today} THEN 'today' ELSE 'yesterday' END AS day,
                   extract(hour FROM created_at AT TIME ZONE :tz)::int AS hour, count(*) AS orders,
                   sum(total_amount)::float8 AS revenue
            FROM {self.t.orders}
            WHERE created_at >= now() - interval '3 days' AND {day} >= {today} - 1
            GROUP BY 1, 2 ORDER BY 1, 2""", tz)
        statuses = statuses.set_index("status").reindex(list(STATUSES), fill_value=0).reset_index()
        return {**totals, **customers,
                "top_by_quantity": products.sort_values(["quantity", "sku"], ascending=[False, True]).head(5),
                "top_by_revenue": products.sort_values(["revenue", "sku"], ascending=[False, True]).head(5),
                "statuses": statuses, "hours": hours,
                "as_of": self.db.scalar("now", "SELECT now() AT TIME ZONE :tz", tz)}


def csv_lines(rows: Iterator[list]) -> Iterator[str]:
    """CSV text for `export_rows`, header first, a chunk of lines at a time; text that a spreadsheet
    would take for a formula is written as text (`data.spreadsheet`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
        count += 1
        if count % 2000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
