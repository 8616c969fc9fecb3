"""Orders in and out of CSV files: the export of every order matching the grid (streamed, formula
cells neutralised), and the import of updates after a preview that marks each row valid or says
why not, applied through the one write rule."""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Iterator

import pandas as pd

from ..errors import ValidationError
from ..order_rules import ORDER_FIELDS, Edit, final_order, same_value
from ..paging import PageQuery, whole_number
from ..spreadsheet import read_cell, safe_cell
from .writes import _show

MAX_IMPORT_ROWS = 10_000
IMPORT_COLUMNS = ("order_id", "version", *ORDER_FIELDS)
EXPORT_COLUMNS = ("order_id", "customer", "email", "status", "items_subtotal", "discount", "shipping_fee", "total",
                  "item_count", "shipping_address", "notes", "created_at", "modified_at", "modified_by", "version")


@dataclass
class ImportRow:
    line: int
    order_id: int | None
    changes: dict[str, tuple[object, object]]        # field -> (as the preview showed it, new)
    reasons: list[str]
    version: int | None = None                       # the file's version column, if it has one
    kept: dict[str, str] = field(default_factory=dict)   # field -> who changed it since the file's version

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
            "changes": "; ".join([*(f"{k}: {_show(a)} → {_show(b)}" for k, (a, b) in r.changes.items()),
                                  *(f"{k}: kept as {who} changed it since your file" for k, who in r.kept.items())])
            or "no change",
            "reasons": "; ".join(r.reasons)} for r in self.rows],
            columns=["line", "order_id", "valid", "changes", "reasons"])



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



class OrderTransfer:
    """CSV in and out, for `Orders`."""

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

    def _changed_since(self, versions: dict[int, int]) -> dict[int, dict[str, tuple[str, str]]]:
        """Per order, the fields changed after the given version: the value they had at that
        version, and who changed them last."""
        if not versions:
            return {}
        rows = self.db.rows("import_changed_since", f"""
            SELECT a.order_id, a.field, (array_agg(a.old_value ORDER BY a.audit_id))[1] AS was,
                   (array_agg(a.changed_by ORDER BY a.audit_id DESC))[1] AS changed_by
            FROM {self.t.audit_log} a
            JOIN unnest(CAST(:ids AS bigint[]), CAST(:versions AS int[])) AS f(order_id, version)
              ON a.order_id = f.order_id AND a.version > f.version
            WHERE a.entity = 'orders' AND a.field IS NOT NULL
            GROUP BY a.order_id, a.field""", {"ids": list(versions), "versions": list(versions.values())})
        found: dict[int, dict[str, tuple[str, str]]] = {}
        for row in rows:
            found.setdefault(row["order_id"], {})[row["field"]] = (row["was"], row["changed_by"])
        return found

    def _check_import(self, raw_rows, current: dict[int, dict]) -> list[ImportRow]:
        versions = {}
        for _, header, values in raw_rows:
            record = dict(zip(header, values))
            order_id, version = whole_number(record.get("order_id", "")), whole_number(record.get("version") or "")
            if order_id in current and version is not None and version < current[order_id]["version"]:
                versions[order_id] = version
        since = self._changed_since(versions)
        checked, seen = [], set()
        for line, header, values in raw_rows:
            record = dict(zip(header, values))
            reasons, changes, version, kept = [], {}, None, {}
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
                wanted = {name: record[name] for name in ORDER_FIELDS if name in record
                          and (record[name] != "" or name == "notes") and not same_value(name, record[name], row[name])}
                if record.get("version"):
                    version = whole_number(record["version"])
                    if version is None:
                        reasons.append(f"version '{record['version']}' is not a whole number")
                    elif version > row["version"]:
                        reasons.append(f"version {version} is newer than order {order_id}'s ({row['version']})")
                    else:
                        kept = self._merge(wanted, since.get(order_id, {}), row, version, reasons)
                try:
                    order, _, _ = final_order(row, wanted, self.product_skus)     # the same rule as the form
                    changes = {name: (row[name], value) for name, value in order.items()
                               if not same_value(name, value, row[name])}
                except ValidationError as exc:
                    reasons.append(exc.message)
            checked.append(ImportRow(line, order_id, changes, reasons, version, kept))
        return checked

    @staticmethod
    def _merge(wanted: dict, since: dict[str, tuple[str, str]], row: dict, version: int, reasons: list[str]
               ) -> dict[str, str]:
        """A row of a file exported at `version`, against the changes made since (`since`): a field
        the file leaves as it was then keeps the newer value (dropped from `wanted`); a field both
        changed is a reason, with both values. Returns the fields kept, and who changed them."""
        kept = {}
        for name, (was, changed_by) in since.items():
            if name not in wanted:
                continue
            if same_value(name, wanted[name], was):
                kept[name] = changed_by
                del wanted[name]
            else:
                reasons.append(f"{name} was changed by {changed_by} since your file's version {version} "
                               f"(it is now {_show(row[name])}; your file has {_show(wanted[name])})")
        return kept

    def apply_import(self, user: str, preview: ImportPreview) -> int:
        """Apply a previewed import in one transaction: each change is compared with the value the
        preview showed, then checked against the order as it will be. All rows or none."""
        if not preview.valid:
            raise ValidationError(preview.problem or "Fix the rows marked invalid before applying.")
        batch = {f"line {r.line}": (r.order_id, r.edits()) for r in preview.rows if r.changes}
        return self._apply_all("import_orders", user, "import", batch,
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

