"""A chart for an assistant answer, chosen from the result's column types: time and number make a
line, category and number a bar chart, two numbers a scatter; anything else stays a table."""
from __future__ import annotations

from datetime import date, datetime

import pandas as pd
from bokeh.models import ColumnDataSource, HoverTool, NumeralTickFormatter
from bokeh.plotting import figure
from pandas.api import types

MAX_BARS = 25
BLUE = "#1976d2"
NUMBER = "0,0.[00]"
TOOLS = "pan,box_zoom,reset,save"


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


def answer_chart(frame: pd.DataFrame, title: str) -> figure | None:
    """The chart for a result, or None. Built by hand in Bokeh, not with hvplot as the other charts
    are: hvplot takes 2.1 times as long to build and render it (a 10-bar answer: p50 60 ms against
    29 ms, tests/bench/charts.py), in the busiest moment of an answer. The mouse wheel scrolls the
    chat, not the chart: dragging pans, and the toolbar offers zoom."""
    frame = with_dates(frame)
    choice = choose_chart(frame)
    if choice is None:
        return None
    kind, x, y = choice
    data = frame[[x, y]].dropna()
    if kind == "bar":
        return _bars(data, x, y, title)
    plot = figure(title=title, height=340, sizing_mode="stretch_width", tools=TOOLS, active_drag="pan",
                  x_axis_type="datetime" if kind == "line" else "linear", x_axis_label=label(x), y_axis_label=label(y))
    plot.yaxis.formatter = NumeralTickFormatter(format=NUMBER)
    source = ColumnDataSource(data.sort_values(x) if kind == "line" else data)
    if kind == "line":
        plot.line(x, y, source=source, line_width=2.5, color=BLUE)
    dots = plot.scatter(x, y, source=source, size=6, color=BLUE, alpha=0.7)
    x_format = "{%F}" if kind == "line" else "{0,0.[00]}"
    plot.add_tools(HoverTool(renderers=[dots], tooltips=[(label(x), f"@{{{x}}}{x_format}"),
                                                          (label(y), f"@{{{y}}}{{{NUMBER}}}")],
                             formatters={f"@{{{x}}}": "datetime"} if kind == "line" else {}))
    return plot


def _bars(data: pd.DataFrame, x: str, y: str, title: str) -> figure:
    """Horizontal bars, largest first, at most MAX_BARS; bars of counts and sums start at zero."""
    top = data.groupby(x, sort=False)[y].sum().sort_values(ascending=False).head(MAX_BARS).reset_index()
    top[x] = top[x].astype(str)
    shown = title if len(top) == data[x].nunique() else f"{title} (top {MAX_BARS})"
    low, high = float(top[y].min()), float(top[y].max())
    x_range = (0, high * 1.05 or 1) if low >= 0 else None
    plot = figure(title=shown, height=120 + 22 * len(top), sizing_mode="stretch_width", tools=TOOLS,
                  active_drag="pan", y_range=list(reversed(top[x])), x_axis_label=label(y),
                  **({"x_range": x_range} if x_range else {}))
    bars = plot.hbar(y=x, right=y, height=0.8, source=ColumnDataSource(top), color=BLUE)
    plot.add_tools(HoverTool(renderers=[bars], tooltips=[(label(x), f"@{{{x}}}"), (label(y), f"@{{{y}}}{{{NUMBER}}}")]))
    plot.xaxis.formatter = NumeralTickFormatter(format=NUMBER)
    plot.ygrid.grid_line_color = None
    return plot
