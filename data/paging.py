"""Paging, sorting and filtering in SQL, for tables too large to hold in a session.

A `Listing` names its columns and the SQL expression behind each; only those names can be
sorted or filtered on, and every value a user typed travels as a bound parameter. A request
(`PageQuery`) returns one `Page`: the rows, the total count and where the page sits.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Mapping

import pandas as pd

from .errors import ValidationError
from .tables import quote

MAX_PAGE_SIZE = 500
MAX_TYPED = 200              # characters of a search or a filter a person types
TEXT, NUMBER, CHOICE, DATE = "text", "number", "choice", "date"


def typed_text(value, what: str) -> str:
    """What a person typed into a search or a filter, ready to become a bound parameter: text, at
    most `MAX_TYPED` characters, no control or invisible characters (a NUL cannot even travel to
    PostgreSQL). Anything else is refused with a sentence naming `what`, never widened to "all"."""
    if not isinstance(value, str):
        raise ValidationError(f"The {what} must be text, not {type(value).__name__}.")
    text = value.strip()
    if len(text) > MAX_TYPED:
        raise ValidationError(f"The {what} is {len(text):,} characters long; type at most {MAX_TYPED}.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text):
        raise ValidationError(f"The {what} contains control or invisible characters; type plain text.")
    return text


def whole_number(text: str) -> int | None:
    """`text` as an id if it is written in ASCII digits only (not '²', not '١٢', not '1_0')."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


@dataclass(frozen=True)
class Column:
    sql: str                 # a trusted SQL expression, written in this code base
    kind: str = TEXT
    sortable: bool = True
    joined: bool = False     # comes from a joined table (counting can skip the join otherwise)


@dataclass(frozen=True)
class PageQuery:
    """What a user asked to see. Filters map a column to a value: text (contains), a number or a
    number range, a list of choices, or a (start, end) date range."""

    page: int = 1
    size: int = 25
    sort: tuple[tuple[str, bool], ...] = ()           # (column, descending)
    filters: tuple[tuple[str, Any], ...] = ()


@dataclass
class Page:
    rows: pd.DataFrame
    total: int
    page: int
    size: int
    total_is_estimate: bool = False

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_row(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.size + 1

    @property
    def last_row(self) -> int:
        return min(self.total, self.page * self.size)


_NUMBER = r"[-+]?[0-9]+(?:\.[0-9]+)?"
_RANGE = re.compile(rf"^\s*({_NUMBER})\s*(?:\.\.|–|-(?=\s*\d))\s*({_NUMBER})\s*$")
_COMPARISON = re.compile(rf"^\s*(>=|<=|≥|≤|>|<|=)?\s*({_NUMBER})\s*$")


def parse_number_filter(text: str) -> tuple[str, float] | tuple[str, float, float]:
    """'100' (equals), '>100', '<= 5', '10..20' or '10-20' (between)."""
    if (m := _RANGE.match(text)) is not None:
        low, high = sorted((float(m[1]), float(m[2])))
        return ("between", low, high)
    if (m := _COMPARISON.match(text)) is not None:
        op = {"≥": ">=", "≤": "<=", None: "="}.get(m[1], m[1])
        return (op, float(m[2]))
    raise ValidationError(f"'{text}' is not a number filter: type a number, a comparison like >100, "
                          "or a range like 10..20.")


_DAY = r"\d{4}-\d{2}-\d{2}"
_DAY_RANGE = re.compile(rf"^\s*({_DAY})\s*\.\.\s*({_DAY})\s*$")
_DAY_COMPARISON = re.compile(rf"^\s*(>=|<=|>|<|=)?\s*({_DAY})\s*$")


def parse_date_filter(text: str, today: date | None = None) -> tuple[date | None, date | None]:
    """'2026-11-20' (that day), '2026-11-01..2026-11-20' (both included), '>2026-11-20', '<=2026-11-20',
    or 'today': a half-open [start, end) range of days."""
    text = text.strip().lower()
    if text == "today":
        start = today or date.today()
        return start, start + timedelta(days=1)
    try:
        if (m := _DAY_RANGE.match(text)) is not None:
            low, high = sorted((date.fromisoformat(m[1]), date.fromisoformat(m[2])))
            return low, high + timedelta(days=1)
        if (m := _DAY_COMPARISON.match(text)) is not None:
            day, op = date.fromisoformat(m[2]), m[1] or "="
            one = timedelta(days=1)
            return {"=": (day, day + one), ">": (day + one, None), ">=": (day, None),
                    "<": (None, day), "<=": (None, day + one)}[op]
    except ValueError:
        pass
    raise ValidationError(f"'{text}' is not a date filter: type a day like 2026-11-20, a range like "
                          "2026-11-01..2026-11-20, a comparison like >2026-11-01, or today.")


def like_pattern(text: str) -> str:
    """`text` as a literal inside an ILIKE … ESCAPE '\\' pattern, matched anywhere."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass
class Listing:
    name: str
    source: str                             # FROM clause (trusted)
    columns: dict[str, Column]
    key: str                                # unique column: ties in sorting are broken by it
    default_sort: tuple[tuple[str, bool], ...] = ()
    count_source: str | None = None         # FROM clause for counting when no joined column is filtered

    def _column(self, name: str) -> Column:
        if name not in self.columns:
            raise ValidationError(f"There is no column '{name}' to sort or filter by.")
        return self.columns[name]

    def conditions(self, query: PageQuery) -> tuple[list[str], dict[str, Any]]:
        clauses, params = [], {}
        for i, (name, value) in enumerate(query.filters):
            if value is None or value == "" or value == [] or value == ():
                continue
            column, p, what = self._column(name), f"f{i}", f"filter on {name}"
            if column.kind == TEXT:
                clauses.append(f"{column.sql} ILIKE :{p} ESCAPE '\\'")
                params[p] = like_pattern(typed_text(value, what))
            elif column.kind == CHOICE:
                values = value if isinstance(value, (list, tuple)) else [value]
                clauses.append(f"{column.sql} = ANY(:{p})")
                params[p] = [typed_text(v, what) for v in values]
            elif column.kind == NUMBER:
                parsed = parse_number_filter(typed_text(value, what)) if isinstance(value, str) else (
                    _number_range(value, what) if isinstance(value, (list, tuple)) else ("=", _number(value, what)))
                if parsed[0] == "between":
                    clauses.append(f"{column.sql} BETWEEN :{p}a AND :{p}b")
                    params[f"{p}a"], params[f"{p}b"] = parsed[1], parsed[2]
                else:
                    clauses.append(f"{column.sql} {parsed[0]} :{p}")
                    params[p] = parsed[1]
            elif column.kind == DATE:
                start, end = parse_date_filter(typed_text(value, what)) if isinstance(value, str) else \
                    _date_range(value, what)
                if start is not None:
                    clauses.append(f"{column.sql} >= :{p}a")
                    params[f"{p}a"] = start
                if end is not None:
                    clauses.append(f"{column.sql} < :{p}b")
                    params[f"{p}b"] = end
        return clauses, params

    def check(self, query: PageQuery) -> None:
        """Raise ValidationError if the query's sort or filters cannot be used (nothing is read)."""
        self.conditions(query)
        self.order_by(query)

    def order_by(self, query: PageQuery) -> str:
        """ORDER BY the chosen columns, ties broken by the key in the first column's direction, so a
        (column DESC, key DESC) index serves the page without sorting."""
        sort = query.sort or self.default_sort
        parts = []
        for name, descending in sort:
            column = self._column(name)
            if not column.sortable:
                raise ValidationError(f"'{name}' cannot be sorted.")
            parts.append(f"{column.sql} {'DESC' if descending else 'ASC'}")
        key_direction = "DESC" if sort and sort[0][1] else "ASC"
        return ", ".join(parts + [f"{self.columns[self.key].sql} {key_direction}"])

    def count(self, db, where_sql: str, bound: dict, cap: int | None, source: str | None = None) -> tuple[int, bool]:
        """Matching rows; above `cap`, the planner's estimate (counting a million rows per page view
        would cost more than the page itself)."""
        source = source or self.source
        if cap is None:
            return int(db.scalar(f"{self.name}_count", f"SELECT count(*) FROM {source} {where_sql}", bound)), False
        capped = int(db.scalar(f"{self.name}_count", f"SELECT count(*) FROM (SELECT 1 FROM {source} "
                                                      f"{where_sql} LIMIT {int(cap) + 1}) AS capped", bound))
        if capped <= cap:
            return capped, False
        plan = db.scalar(f"{self.name}_estimate", f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {source} {where_sql}",
                         bound)
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        return max(estimate, cap + 1), True

    def fetch(self, db, query: PageQuery, *, where: str = "", params: Mapping[str, Any] | None = None,
              count_cap: int | None = None) -> Page:
        if not 1 <= query.size <= MAX_PAGE_SIZE:
            raise ValidationError(f"A page holds 1 to {MAX_PAGE_SIZE} rows.")
        clauses, bound = self.conditions(query)
        if where:
            clauses.insert(0, where)
        bound.update(params or {})
        where_sql = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        joined = any(self.columns[name].joined for name, value in query.filters if value not in (None, "", [], ()))
        total, estimated = self.count(db, where_sql, bound, count_cap,
                                      None if joined or not self.count_source else self.count_source)
        pages = max(1, math.ceil(total / query.size))
        page = min(max(1, query.page), pages)
        select = ", ".join(f"{c.sql} AS {quote(name)}" for name, c in self.columns.items())
        rows = db.frame(f"{self.name}_page",
                        f"SELECT {select} FROM {self.source} {where_sql} ORDER BY {self.order_by(query)} "
                        "LIMIT :page_limit OFFSET :page_offset",
                        {**bound, "page_limit": query.size, "page_offset": (page - 1) * query.size})
        return Page(rows=rows, total=total, page=page, size=query.size, total_is_estimate=estimated)


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"The {what} must be a number, a comparison like >100 or a range like 10..20.")
    return float(value)


def _number_range(value, what: str) -> tuple[str, float, float]:
    if len(value) != 2:
        raise ValidationError(f"The {what} must be a range of two numbers.")
    low, high = sorted((_number(value[0], what), _number(value[1], what)))
    return ("between", low, high)


def _date_range(value, what: str) -> tuple:
    if not (isinstance(value, (list, tuple)) and len(value) == 2
            and all(v is None or isinstance(v, date) for v in value)):
        raise ValidationError(f"The {what} must be a day, a range of days or a comparison like >2026-11-01.")
    return tuple(value)
