"""The Marketplace charts: DataFrame in, titled and labelled chart out, each made with hvplot (which
returns HoloViews elements; HoloViews only adds the median guides, which hvplot has no call for)."""
from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers DataFrame.hvplot
import numpy as np
import pandas as pd
from bokeh.models import NumeralTickFormatter

QUADRANT_COLORS = {"Protect & Expand": "#2e7d32", "Fix Conversion": "#ed6c02", "Grow Demand": "#1976d2",
                   "Maintain": "#8d8d8d"}
CATEGORY_COLORS = {"promote": "#2e7d32", "at_risk": "#ed6c02", "intervention": "#d32f2f"}
CATEGORY_LABELS = {"promote": "Promote", "at_risk": "At risk", "intervention": "Intervention"}
TIER_COLORS = {"must_have": "#6a1b9a", "differentiator": "#1976d2", "low_impact": "#b0b0b0"}
TIER_LABELS = {"must_have": "Must-have", "differentiator": "Differentiator", "low_impact": "Low impact"}
DEVICE_COLORS = {"desktop": "#1976d2", "mobile": "#ed6c02", "tablet": "#2e7d32"}
# framewise: axes follow each new frame when a chart is redrawn in place with other data.
COMMON = dict(responsive=True, toolbar="above", default_tools=["save", "reset"], fontscale=1.05, framewise=True)


def percent() -> NumeralTickFormatter:
    """A new formatter for each chart: a Bokeh model belongs to one session's document, and one
    shared by two sessions' charts broke the second session's page."""
    return NumeralTickFormatter(format="0.0")


def count() -> NumeralTickFormatter:
    return NumeralTickFormatter(format="0,0")


def investment_matrix(investment: pd.DataFrame, height: int = 440) -> hv.Overlay:
    """Demand vs conversion per city; marker area follows revenue; colour is the quadrant."""
    return (matrix_guides(investment) * matrix_points(investment) * matrix_labels(investment)).opts(
        **matrix_options(height))


def matrix_points(investment: pd.DataFrame) -> hv.Points:
    """The cities, selectable with a box, a lasso or a tap (in the frame's row order)."""
    data = investment.assign(size=8 + 30 * np.sqrt(investment["revenue"] / max(investment["revenue"].max(), 1)))
    # One glyph whose colour is mapped from the quadrant column: Bokeh builds the legend from it.
    return data.hvplot.points(x="demand", y="conversion", c="quadrant", hover_cols=["city", "revenue", "size"],
                              responsive=True).opts(
        color="quadrant", cmap=QUADRANT_COLORS, size="size", line_color="white", fill_alpha=0.8, show_legend=True,
        nonselection_fill_alpha=0.15, nonselection_line_alpha=0.15, selection_line_color="#212121",
        selection_line_width=2, tools=["hover", "box_select", "lasso_select", "tap"], active_tools=["box_select"],
        hover_tooltips=[
            ("City", "@city"), ("Demand", "@demand{0,0} viewers"), ("Conversion", "@conversion{0.0}%"),
            ("Revenue", "@revenue{$0,0}"), ("Quadrant", "@quadrant")])


def matrix_labels(investment: pd.DataFrame) -> hv.Labels:
    leaders = investment.nlargest(8, "revenue")
    return leaders.hvplot.labels(x="demand", y="conversion", responsive=True, text="city").opts(
        text_font_size="9pt", yoffset=0.5, text_color="#444")


def matrix_guides(investment: pd.DataFrame) -> hv.Overlay:
    return (hv.VLine(float(investment["demand"].median())) * hv.HLine(float(investment["conversion"].median()))).opts(
        hv.opts.VLine(line_dash="dashed", line_color="#9e9e9e", line_width=1),
        hv.opts.HLine(line_dash="dashed", line_color="#9e9e9e", line_width=1))


MATRIX_HEIGHT = 440


def matrix_options(height: int = MATRIX_HEIGHT) -> dict:
    return dict(title="Investment priority matrix (marker size: revenue; dashed lines: medians)",
                xlabel="Demand (viewers, last 12 months)", ylabel="Conversion (completed ÷ viewers, %)",
                xformatter=count(), yformatter=percent(), height=height, legend_position="bottom_right", **COMMON)


def funnel_chart(funnel: pd.DataFrame, title: str, height: int | None = None) -> hv.Overlay:
    """Horizontal bars from the first stage down, each labelled with its count and stage-to-stage rate."""
    top = max(float(funnel["count"].max()), 1.0)
    data = funnel.assign(
        text=[f"{c:,.0f}" + (f"  ({r:.1f}% of previous)" if pd.notna(r) else "")
              for c, r in zip(funnel["count"], funnel["rate_from_previous"])],
        anchor=funnel["count"] + top * 0.015)
    height = height or 110 + 46 * len(data)
    bars = data.hvplot.bar(x="label", y="count", hover_cols=["rate_from_previous", "rate_from_top"],
                           responsive=True).opts(
        invert_axes=True, color="#1976d2", tools=["hover"], hover_tooltips=[
            ("Stage", "@label"), ("People", "@count{0,0}"), ("Of previous stage", "@rate_from_previous{0.0}%"),
            ("Of viewers", "@rate_from_top{0.0}%")])
    labels = data.hvplot.labels(x="label", y="anchor", responsive=True, text="text").opts(
        invert_axes=True, text_align="left", text_color="#333", text_font_size="9pt")
    # Axes are named before inversion: x is the stage (drawn on the left), y the count (drawn below).
    return (bars * labels).opts(title=title, xlabel="", ylabel="People", xformatter=count(), invert_yaxis=True,
                                ylim=(0, top * 1.45), height=height, **COMMON)


def legend(colors: dict[str, str], labels: dict[str, str] | None = None, marker: str = "circle") -> hv.NdOverlay:
    """Legend entries for colours mapped by hand (one glyph per chart keeps selection indices simple)."""
    return hv.NdOverlay({(labels or {}).get(k, k): hv.Scatter([(np.nan, np.nan)], label=(labels or {}).get(k, k))
                         .opts(color=c, size=10, marker=marker) for k, c in colors.items()})


def property_scatter(points: pd.DataFrame, title: str, height: int = 430) -> hv.Points:
    """Views (log scale) vs conversion, coloured by performance category; box/lasso/tap select."""
    data = points.assign(category=points["performance_category"].map(CATEGORY_LABELS),
                         views_plot=points["views"].clip(lower=1))
    colors = {CATEGORY_LABELS[k]: c for k, c in CATEGORY_COLORS.items()}
    return data.hvplot.points(x="views_plot", y="conversion", responsive=True, c="category",
                              hover_cols=["id", "name", "fail_rate", "revenue", "views"]).opts(
        color="category", cmap=colors, show_legend=True, size=7, fill_alpha=0.75, line_alpha=0, logx=True,
        nonselection_alpha=0.15, selection_line_color="black", selection_line_alpha=1,
        tools=["hover", "box_select", "lasso_select", "tap"], active_tools=["box_select"],
        hover_tooltips=[("Property", "@name"), ("Views", "@views{0,0}"), ("Conversion", "@conversion{0.0}%"),
                        ("Payment failures", "@fail_rate{0.0}%"), ("Revenue", "@revenue{$0,0}"),
                        ("Category", "@category")],
        title=title, xlabel="Views (log scale)", ylabel="Conversion (bookings ÷ views, %)",
        xformatter=count(), yformatter=percent(), height=height, legend_position="top_right", **COMMON)


def highlight(points: pd.DataFrame) -> hv.Points:
    """Rings around the properties ticked in the table."""
    data = points.assign(views_plot=points["views"].clip(lower=1))
    return data.hvplot.points(x="views_plot", y="conversion", responsive=True, hover_cols=["name"]).opts(
        size=14, fill_alpha=0, line_color="black", line_width=2, tools=[])


def amenity_bars(amenities: pd.DataFrame, title: str) -> hv.Overlay:
    data = amenities.assign(tier=amenities["impact_tier"].map(TIER_LABELS),
                            tier_color=amenities["impact_tier"].map(TIER_COLORS))
    bars = data.hvplot.bar(x="name", y="lift", responsive=True, hover_cols=["tier", "tier_color"]).opts(
        invert_axes=True, color="tier_color", line_alpha=0, tools=["hover"],
        hover_tooltips=[("Amenity", "@name"), ("Lift", "@lift{0.00} points"), ("Impact", "@tier")])
    return (bars * legend(TIER_COLORS, TIER_LABELS, marker="square")).opts(
        title=title, xlabel="", ylabel="Confirmation lift (percentage points)", invert_yaxis=True,
        xformatter=percent(), height=120 + 22 * len(data), legend_position="bottom_right",
        **COMMON)


def weekly_rates(weekly: pd.DataFrame, title: str, height: int = 360) -> hv.Overlay:
    data = weekly.assign(device=weekly["device"].str.capitalize())
    colors = [DEVICE_COLORS[d.lower()] for d in sorted(data["device"].unique())]
    # One call per glyph with `by` (a line and a marker per device): six calls cost 40 ms more per redraw.
    lines = data.hvplot.line(x="week", y="rate", by="device", color=colors, responsive=True).opts(
        hv.opts.Curve(line_width=2.5, tools=["hover"], hover_tooltips=[
            ("Week of", "@week{%F}"), ("Device", "@device"), ("Completion", "@rate{0.0}%")],
            hover_formatters={"@week": "datetime"}))
    dots = data.hvplot.scatter(x="week", y="rate", by="device", color=colors, responsive=True).opts(
        hv.opts.Scatter(size=6))
    top = float(weekly["rate"].max()) if weekly["rate"].notna().any() else 1.0
    return (lines * dots).opts(title=title, xlabel="Week starting", ylabel="Completion rate (completed ÷ viewers, %)",
                               yformatter=percent(), ylim=(0, top * 1.15), height=height, legend_position="right",
                               **COMMON)
