"""A chart for an assistant answer, chosen from the result's column types: time and number make a
line, category and number a bar chart, two numbers a scatter; anything else stays a table."""
from __future__ import annotations

from datetime import date, datetime

import hvplot.pandas  # noqa: F401 - registers DataFrame.hvplot
import pandas as pd
from bokeh.models import NumeralTickFormatter
from pandas.api import types

MAX_BARS = 25


def with_dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of Python dates (as psycopg returns DATE) as datetimes, so they count as time."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column].dropna()
        if frame[column].dtype == object and len(values) and values.map(
                lambda v: isinstance(v, (date, datetime))).all():
            frame[column] = pd.to_datetime(frame[column])
    return frame


def choose_chart(frame: pd.DataFrame) -> tuple[str, str, str] | None:
    """(kind, x, y) for the first fitting columns, or None when nothing is plottable."""
    if frame.empty:
        return None
    frame = with_dates(frame)
    numeric = [c for c in frame.columns if types.is_numeric_dtype(frame[c]) and not types.is_bool_dtype(frame[c])]
    temporal = [c for c in frame.columns if types.is_datetime64_any_dtype(frame[c])]
    categorical = [c for c in frame.columns
                   if c not in numeric and c not in temporal and frame[c].map(type).isin([str]).any()]
    if temporal and numeric:
        return "line", temporal[0], numeric[0]
    if categorical and numeric:
        return "bar", categorical[0], numeric[0]
    if len(numeric) >= 2:
        return "scatter", numeric[0], numeric[1]
    return None


def label(column: str) -> str:
    """A column name as an axis label: `total_viewers` -> `Total viewers`."""
    text = str(column).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def answer_chart(frame: pd.DataFrame, title: str):
    frame = with_dates(frame)
    choice = choose_chart(frame)
    if choice is None:
        return None
    kind, x, y = choice
    common = dict(title=title, responsive=True, height=340, yformatter=NumeralTickFormatter(format="0,0.[00]"))
    data = frame[[x, y]].dropna()
    if kind == "line":
        data = data.sort_values(x)
        line = data.hvplot.line(x=x, y=y, xlabel=label(x), ylabel=label(y), line_width=2.5, **common)
        return line * data.hvplot.scatter(x=x, y=y, size=30, responsive=True, height=common["height"])
    if kind == "bar":
        top = data.groupby(x, sort=False)[y].sum().sort_values(ascending=False).head(MAX_BARS).reset_index()
        shown = title if len(top) == data[x].nunique() else f"{title} (top {MAX_BARS})"
        return top.hvplot.barh(x=x, y=y, xlabel="", ylabel=label(y), color="#1976d2", **{**common, "title": shown,
                               "yformatter": None, "xformatter": NumeralTickFormatter(format="0,0.[00]"),
                               "height": 120 + 22 * len(top)}).opts(invert_yaxis=True)
    return data.hvplot.scatter(x=x, y=y, xlabel=label(x), ylabel=label(y), size=40, alpha=0.7, **common)
