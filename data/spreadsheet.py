"""Cells of the files people open in spreadsheets (CSV exports, Excel downloads).

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to a
spreadsheet, which may run it (`=HYPERLINK(...)` leaks data; DDE runs programs). As OWASP
recommends, such a cell is written with a leading apostrophe, which spreadsheets show as text.
Leading apostrophes are counted, so a value that itself starts with one survives too, and
`read_cell` undoes exactly what `safe_cell` did: an exported file can be imported back unchanged.
"""
from __future__ import annotations

import re

import pandas as pd

_FORMULA = re.compile(r"^'*[=+\-@\t\r]")


def safe_cell(value):
    """`value` as written to a spreadsheet file: text that would start a formula gets a leading
    apostrophe; anything else is unchanged."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def read_cell(text: str) -> str:
    """A cell read back from such a file: the apostrophe `safe_cell` added is removed."""
    return text[1:] if text.startswith("'") and _FORMULA.match(text[1:]) else text


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells (and column names) are safe in a spreadsheet."""
    safe = frame.copy()
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            safe.isetitem(position, column.map(safe_cell).astype(object))
    safe.columns = [safe_cell(str(c)) for c in safe.columns]
    return safe
