"""Questions asked from a chart: the cities or properties a person selected travel with the question,
and the answer's SQL is checked to filter on them."""
from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

MAX_VALUES = 50          # a selection larger than this is too long to put in a question


@dataclass(frozen=True)
class Selection:
    column: str                      # the column the selection filters on (city, property_id)
    values: tuple[str, ...]          # its values, as the column holds them
    noun: str                        # "cities", "properties"

    def context(self) -> str:
        """What the question adds for whoever writes the SQL: the filter, spelled out."""
        quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in self.values)
        return f"Only include rows where {self.column} IN ({quoted})."


@dataclass(frozen=True)
class FilterCheck:
    used: frozenset[str]             # selected values the SQL filters the column on
    missing: frozenset[str]          # selected values it leaves out
    filtered: bool                   # whether the SQL filters the column at all

    @property
    def keeps_to_selection(self) -> bool:
        return self.filtered and not self.missing


def check_filter(sql: str | None, selection: Selection) -> FilterCheck:
    """Which of the selected values the SQL's predicates on the column name (`col IN (...)` or
    `col = '...'`, in any clause or subquery)."""
    named: set[str] = set()
    filtered = False
    for tree in _parse(sql or ""):
        for predicate in tree.find_all(exp.In, exp.EQ):
            if isinstance(predicate.parent, exp.Not):      # city NOT IN (...) keeps to nothing
                continue
            column, literals = _column_and_literals(predicate)
            if column is not None and column.lower() == selection.column.lower():
                filtered = True
                named |= literals
    wanted = set(selection.values)
    return FilterCheck(frozenset(wanted & named), frozenset(wanted - named), filtered)


def _parse(sql: str) -> list[exp.Expression]:
    for dialect in ("postgres", "databricks"):
        try:
            return [tree for tree in sqlglot.parse(sql, read=dialect) if tree is not None]
        except sqlglot.errors.SqlglotError:      # ParseError, TokenError, …
            continue
    return []


def _column_and_literals(predicate: exp.Expression) -> tuple[str | None, set[str]]:
    if isinstance(predicate, exp.In):
        column = predicate.this
        values = predicate.expressions
    else:
        left, right = predicate.this, predicate.expression
        column, values = (left, [right]) if isinstance(left, exp.Column) else (right, [left])
    if not isinstance(column, exp.Column):
        return None, set()
    return column.name, {v.name for v in values if isinstance(v, exp.Literal)}
