"""A result (a DataFrame) as JSON and back: columns, their kinds (number, time, bool, text) and rows
of plain values. Kept with conversations, verified questions and the shared answer cache."""
from __future__ import annotations

from decimal import Decimal

import pandas as pd


def snapshot(frame: pd.DataFrame) -> dict:
    """A result as JSON: columns, their kinds (number, time, text) and rows of plain values."""
    kinds, columns = [], []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            kinds.append("time")
            columns.append([None if pd.isna(v) else v.isoformat() for v in column])
        elif pd.api.types.is_bool_dtype(column):
            kinds.append("bool")
            columns.append([None if pd.isna(v) else bool(v) for v in column])
        elif pd.api.types.is_numeric_dtype(column) or _all_decimal(column):
            kinds.append("number")
            columns.append([None if pd.isna(v) else float(v) if isinstance(v, Decimal) else v.item()
                            if hasattr(v, "item") else v for v in column])
        else:
            kinds.append("text")
            columns.append([None if _missing(v) else str(v) for v in column])
    return {"columns": [str(c) for c in frame.columns], "kinds": kinds, "rows": [list(r) for r in zip(*columns)]}


def from_snapshot(data: dict) -> pd.DataFrame:
    frame = pd.DataFrame(data["rows"], columns=data["columns"])
    for name, kind in zip(data["columns"], data["kinds"]):
        if kind == "time":
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        elif kind == "number":
            frame[name] = pd.to_numeric(frame[name])
        else:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def _all_decimal(column: pd.Series) -> bool:
    values = column.dropna()
    return len(values) > 0 and all(isinstance(v, Decimal) for v in values)


def _missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
