"""Paging, sorting and filtering in SQL, for tables too large to hold in a session.

A `Listing` names its columns and the SQL expression behind each; only those names can be
sorted or filtered on, and every value a user typed travels as a bound parameter. A request
(`PageQuery`) returns one `Page`: the rows, the total count and where the page sits.

Pages are read by seeking, not skipping: a `Page` carries a `Bookmark` (the sort values of its
first and last rows), and the next, previous or same page starts from there on the sort's index,
so page 10,000 costs what page 1 costs. The last page is read backwards from the end. Only a jump
far from both ends and from the bookmark (which the grid's pager never offers) skips rows.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Mapping

import pandas as pd

from .database import to_frame
from .errors import ValidationError
from .tables import quote

MAX_PAGE_SIZE = 500
MAX_TYPED = 200              # characters of a search or a filter a person types
# NUMBER columns compare with exact decimals, WHOLE (integer) columns with integers: a bound value of
# another type would make PostgreSQL convert the column, and its index could no longer be used.
TEXT, NUMBER, WHOLE, CHOICE, DATE = "text", "number", "whole", "choice", "date"


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
    sort_sql: str | None = None  # what sorting uses, if not `sql` (an indexed prefix of long text, say)

    @property
    def sort_key(self) -> str:
        return self.sort_sql or self.sql


@dataclass(frozen=True)
class Bookmark:
    """Where a page that was shown sits: its number, the sort values of its first and last rows,
    and what it was read with (a bookmark from another sort, filter or search is not used)."""

    page: int
    first: tuple
    last: tuple
    context: str


@dataclass(frozen=True)
class PageQuery:
    """What a user asked to see. Filters map a column to a value: text (contains), a number or a
    number range, a list of choices, or a (start, end) date range. `bookmark` is the page shown
    now, from which the asked page is found by seeking."""

    page: int = 1
    size: int = 25
    sort: tuple[tuple[str, bool], ...] = ()           # (column, descending)
    filters: tuple[tuple[str, Any], ...] = ()
    bookmark: Bookmark | None = None


@dataclass
class Page:
    rows: pd.DataFrame
    total: int
    page: int
    size: int
    total_is_estimate: bool = False
    bookmark: Bookmark | None = None

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


def parse_number_filter(text: str) -> tuple[str, Decimal] | tuple[str, Decimal, Decimal]:
    """'100' (equals), '>100', '<= 5', '10..20' or '10-20' (between)."""
    if (m := _RANGE.match(text)) is not None:
        low, high = sorted((Decimal(m[1]), Decimal(m[2])))
        return ("between", low, high)
    if (m := _COMPARISON.match(text)) is not None:
        op = {"≥": ">=", "≤": "<=", None: "="}.get(m[1], m[1])
        return (op, Decimal(m[2]))
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
            elif column.kind in (NUMBER, WHOLE):
                parsed = parse_number_filter(typed_text(value, what)) if isinstance(value, str) else (
                    _number_range(value, what) if isinstance(value, (list, tuple)) else ("=", _number(value, what)))
                if column.kind == WHOLE:
                    parsed = _in_whole_numbers(parsed)
                if parsed is None:                           # '= 2.5' of a whole-number column
                    clauses.append("false")
                elif parsed[0] == "between":
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

    def sort_terms(self, query: PageQuery) -> list[tuple[str, bool]]:
        """(SQL expression, descending) of the chosen columns, ties broken by the key in the first
        column's direction, so a (column, key) index read forwards or backwards serves the page."""
        sort = query.sort or self.default_sort
        terms = []
        for name, descending in sort:
            column = self._column(name)
            if not column.sortable:
                raise ValidationError(f"'{name}' cannot be sorted.")
            terms.append((column.sort_key, bool(descending)))
        key = self.columns[self.key].sql
        if key not in (sql for sql, _ in terms):
            terms.append((key, terms[0][1] if terms else False))
        return terms

    def order_by(self, query: PageQuery) -> str:
        return _order_by(self.sort_terms(query))

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
        joined = any(self.columns[name].joined for name, value in query.filters if value not in (None, "", [], ()))
        total, estimated = self.count(db, _where(clauses), bound, count_cap,
                                      None if joined or not self.count_source else self.count_source)
        pages = max(1, math.ceil(total / query.size))
        page = min(max(1, query.page), pages)
        terms = self.sort_terms(query)
        context = repr((terms, clauses, sorted(bound.items())))
        bookmark = query.bookmark if query.bookmark is not None and query.bookmark.context == context else None
        last_size = query.size if estimated else total - (pages - 1) * query.size
        read = _plan(page, pages, query.size, last_size, bookmark)
        rows = self._read(db, terms, clauses, bound, read)
        if not rows and page > 1:       # the rows after the bookmark are gone: show the last page
            page, read = pages, _plan(pages, pages, query.size, last_size, None)
            rows = self._read(db, terms, clauses, bound, read)
        names = list(self.columns)
        frame = to_frame([tuple(row[n] for n in names) for row in rows], names)
        mark = Bookmark(page, _sort_values(rows[0], terms), _sort_values(rows[-1], terms), context) if rows else None
        return Page(rows=frame, total=total, page=page, size=query.size, total_is_estimate=estimated,
                    bookmark=mark)

    def _read(self, db, terms: list[tuple[str, bool]], clauses: list[str], bound: dict, read: "_Read") -> list[dict]:
        """The page's rows in the sort's order, each with its sort values as _sort0, _sort1, …"""
        clauses, bound = list(clauses), dict(bound)
        if read.seek is not None:
            relation, values = read.seek
            clauses.append(_seek_condition(terms, relation, read.backward))
            bound.update({f"seek{i}": v for i, v in enumerate(values)})
        order = [(sql, descending != read.backward) for sql, descending in terms]
        select = ", ".join([f"{c.sql} AS {quote(name)}" for name, c in self.columns.items()] +
                           [f"{sql} AS _sort{i}" for i, (sql, _) in enumerate(terms)])
        rows = db.rows(f"{self.name}_page", f"SELECT {select} FROM {self.source} {_where(clauses)} "
                                            f"ORDER BY {_order_by(order)} LIMIT :page_limit OFFSET :page_offset",
                       {**bound, "page_limit": read.limit, "page_offset": read.offset})
        return rows[::-1] if read.backward else rows


@dataclass(frozen=True)
class _Read:
    """How to read a page: from which row (`seek`: 'after', 'from' or 'before' a row's sort values),
    in which direction, skipping how many rows and taking how many."""

    seek: tuple[str, tuple] | None
    backward: bool
    offset: int
    limit: int


def _plan(page: int, pages: int, size: int, last_size: int, bookmark: Bookmark | None) -> _Read:
    if page == 1:
        return _Read(None, False, 0, size)
    if page == pages:
        return _Read(None, True, 0, last_size if last_size > 0 else size)
    if bookmark is not None:
        if page == bookmark.page:
            return _Read(("from", bookmark.first), False, 0, size)
        if page > bookmark.page:
            return _Read(("after", bookmark.last), False, (page - bookmark.page - 1) * size, size)
        return _Read(("before", bookmark.first), True, (bookmark.page - page - 1) * size, size)
    if page - 1 <= pages - page:                  # no bookmark: skip from the nearer end
        return _Read(None, False, (page - 1) * size, size)
    return _Read(None, True, last_size + (pages - page - 1) * size, size)


def _seek_condition(terms: list[tuple[str, bool]], relation: str, backward: bool) -> str:
    """Rows after (or from, or before) the row whose sort values are bound as :seek0, :seek1, …,
    in the direction of reading. When every column is read in one direction this is a row
    comparison, which a (column, key) index answers as one range; a leading bound on the first
    column lets an index serve it across a join, too."""
    def beyond(descending: bool) -> str:
        return "<" if descending != backward else ">"

    first_sql, first_descending = terms[0]
    leading = f"{first_sql} {beyond(first_descending)}= :seek0"
    if len({descending for _, descending in terms}) == 1:
        columns = ", ".join(sql for sql, _ in terms)
        values = ", ".join(f":seek{i}" for i in range(len(terms)))
        inclusive = "=" if relation == "from" else ""
        return f"{leading} AND ({columns}) {beyond(first_descending)}{inclusive} ({values})"
    alternatives = [" AND ".join([f"{terms[j][0]} = :seek{j}" for j in range(i)] +
                                 [f"{sql} {beyond(descending)} :seek{i}"]) for i, (sql, descending) in enumerate(terms)]
    if relation == "from":
        alternatives.append(" AND ".join(f"{sql} = :seek{j}" for j, (sql, _) in enumerate(terms)))
    return f"{leading} AND ({' OR '.join(f'({a})' for a in alternatives)})"


def _sort_values(row: dict, terms: list) -> tuple:
    return tuple(row[f"_sort{i}"] for i in range(len(terms)))


def _order_by(terms: list[tuple[str, bool]]) -> str:
    return ", ".join(f"{sql} {'DESC' if descending else 'ASC'}" for sql, descending in terms)


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _number(value, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"The {what} must be a number, a comparison like >100 or a range like 10..20.")
    return Decimal(repr(value))


def _in_whole_numbers(parsed: tuple) -> tuple | None:
    """The same condition on an integer column, with integer bounds (None: nothing can match)."""
    if parsed[0] == "between":
        return ("between", math.ceil(parsed[1]), math.floor(parsed[2]))
    op, value = parsed
    if op == "=":
        return ("=", int(value)) if value == int(value) else None
    rounded = {">": math.floor, "<=": math.floor, ">=": math.ceil, "<": math.ceil}[op](value)
    return (op, rounded)


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
