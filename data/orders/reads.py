"""Reading orders: the grid's pages (sorted, filtered and searched in SQL), one order with its
customer, its lines, its history and audit trail, the products, and customers by name."""
from __future__ import annotations

from decimal import Decimal

import pandas as pd
from sqlalchemy import Connection, text

from ..cache import cached
from ..order_rules import allowed_statuses
from ..paging import (CHOICE, DATE, NUMBER, TEXT, WHOLE, Column, Listing, Page, PageQuery, like_pattern, typed_text,
                      whole_number)
from ..tables import Tables, quote


def orders_listing(t: Tables) -> Listing:
    """The grid: its columns, the SQL behind each, and how it is sorted by default."""
    return Listing(
        name="orders", key="order_id",
        source=f"{t.orders} o JOIN {t.customers} c ON c.customer_id = o.customer_id",
        count_source=f"{t.orders} o",   # every order has exactly one customer (NOT NULL foreign key)
        columns={
            "order_id": Column("o.order_id", WHOLE),
            "customer": Column("c.name", TEXT, joined=True),
            "email": Column("c.email", TEXT, joined=True),
            "status": Column("o.status", CHOICE),
            "total": Column("o.total_amount", NUMBER),
            "items": Column("o.item_count", WHOLE),
            "discount": Column("o.discount", NUMBER),
            "shipping_fee": Column("o.shipping_fee", NUMBER),
            "shipping_address": Column("o.shipping_address", TEXT),
            # Notes may be longer than an index entry can hold: sorted by their first 100 characters.
            "notes": Column("o.notes", TEXT, sort_sql="left(o.notes, 100)"),
            "created_at": Column("o.created_at", DATE),
            "modified_at": Column("o.modified_at", DATE),
            "modified_by": Column("o.modified_by", TEXT),
            "version": Column("o.version", WHOLE, sortable=False),
        },
        default_sort=(("created_at", True),))


def _as_grid_holds(row) -> dict:
    """Money as floats, like the pages the grid shows."""
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()}


class OrderReads:
    """The read side of `Orders`."""

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

    def _grid_select(self) -> str:
        """The grid's columns, as its pages read them, from the listing's source."""
        select = ", ".join(f"{c.sql} AS {quote(n)}" for n, c in self.listing.columns.items())
        return f"SELECT {select} FROM {self.listing.source}"

    def grid_row(self, order_id: int, conn: Connection | None = None) -> dict | None:
        sql = f"{self._grid_select()} WHERE o.order_id = :id"
        if conn is not None:
            row = conn.execute(text(sql), {"id": order_id}).mappings().first()
        else:
            row = next(iter(self.db.rows("order_grid_row", sql, {"id": order_id})), None)
        return _as_grid_holds(row) if row else None

    def grid_rows(self, order_ids) -> list[dict]:
        """The grid's rows of these orders as they are now (an open page that others changed)."""
        rows = self.db.rows("order_grid_rows", f"{self._grid_select()} WHERE o.order_id = ANY(:ids)",
                            {"ids": sorted(order_ids)})
        return [_as_grid_holds(row) for row in rows]

    def changed_rows(self, version: int, order_ids: frozenset[int], shape=lambda rows: rows) -> dict[int, dict]:
        """The grid's rows of the orders a burst of the change feed named (`version`), read and
        `shape`d once per process however many open grids ask: by order id."""
        key = (version, order_ids)
        with self._burst_lock:
            if key not in self._bursts:
                self._bursts[key] = {row["order_id"]: row for row in shape(self.grid_rows(order_ids))}
                while len(self._bursts) > 8:
                    self._bursts.pop(next(iter(self._bursts)))
            return self._bursts[key]

    def count_matching(self, query: PageQuery, search: str | None, order_ids) -> int:
        """How many of these orders the grid's filters and search would show (new orders to announce)."""
        clauses, params = self.listing.conditions(query)
        where, bound = self._search(search)
        clauses += [where] if where else []
        clauses.append("o.order_id = ANY(:new_ids)")
        return int(self.db.scalar("order_count_new", f"SELECT count(*) FROM {self.listing.source} "
                                                      f"WHERE {' AND '.join(clauses)}",
                                  {**params, **bound, "new_ids": sorted(order_ids)}))

    def merged_with(self, order_id: int, seen_version: int, saved_version: int) -> str:
        """Who changed what in the order between the version a person saw and the one their save
        made (their change was applied on top): "kim@example.com (status)", or "" if nobody."""
        rows = self.db.rows("order_merged_with", f"""
            SELECT changed_by, string_agg(DISTINCT field, ', ') AS fields FROM {self.t.audit_log}
            WHERE entity = 'orders' AND order_id = :id AND version > :seen AND version < :saved AND field IS NOT NULL
            GROUP BY changed_by ORDER BY changed_by""", {"id": order_id, "seen": seen_version, "saved": saved_version})
        return "; ".join(f"{r['changed_by']} ({r['fields']})" for r in rows)

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
            WHERE order_id = :id ORDER BY changed_at DESC, history_id DESC""", {"id": order_id})

    def audit_trail(self, order_id: int) -> pd.DataFrame:
        return self.db.frame("order_audit", f"""
            SELECT changed_at, changed_by, action, entity, field, old_value, new_value, batch_id
            FROM {self.t.audit_log} WHERE order_id = :id ORDER BY audit_id DESC""", {"id": order_id})

    @cached("products", 300)
    def products(self) -> pd.DataFrame:
        return self.db.frame("products", f"""
            SELECT product_id, sku, name, category, unit_price::float8 AS unit_price
            FROM {self.t.products} WHERE active ORDER BY sku""")

    def product_skus(self) -> set[str]:
        return set(self.products()["sku"])

    def find_customers(self, search: str, limit: int = 20) -> pd.DataFrame:
        pattern = like_pattern(typed_text(search, "customer search"))
        return self.db.frame("find_customers", f"""
            SELECT customer_id, name, email, address FROM {self.t.customers}
            WHERE name ILIKE :p ESCAPE '\\' OR email ILIKE :p ESCAPE '\\' ORDER BY name LIMIT :limit""",
                             {"p": pattern, "limit": limit})

