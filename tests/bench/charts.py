"""Charts made with hvplot against the hand-built versions they replaced: the server's time to build
each chart and render it to Bokeh models, p50/p95 over repeated builds, on demo-sized data.

- Marketplace charts: hvplot (the app's code) against HoloViews elements built by hand (the
  charts module as it was before hvplot, read from git at BASELINE).
- The assistant's answer chart: plain Bokeh (the app's code, kept for speed) against hvplot.

    python -m tests.bench.charts
"""
from __future__ import annotations

import subprocess
import time
import types
from pathlib import Path

import holoviews as hv
import hvplot.pandas  # noqa: F401
import numpy as np
import pandas as pd

from dashboard.assistant.charts import answer_chart, choose_chart, label, with_dates
from dashboard.marketplace import charts
from tests.bench.common import percentiles

BASELINE = "a0b2b9e"         # the last commit with hand-built Marketplace charts
ROUNDS = 40
REPO = Path(__file__).resolve().parents[2]

hv.extension("bokeh")
rng = np.random.default_rng(7)


def demo_frames() -> dict[str, pd.DataFrame]:
    cities = [f"City {i}" for i in range(80)]
    investment = pd.DataFrame({"city": cities, "demand": rng.integers(500, 16000, 80),
                               "conversion": rng.uniform(4, 17, 80), "revenue": rng.uniform(1e5, 2e6, 80),
                               "quadrant": rng.choice(list(charts.QUADRANT_COLORS), 80)})
    funnel = pd.DataFrame({"label": ["Viewers", "Bookers", "Completed"], "count": [85401, 24063, 9867],
                           "rate_from_previous": [np.nan, 28.2, 41.0], "rate_from_top": [100, 28.2, 11.6]})
    points = pd.DataFrame({"id": range(2000), "name": [f"Property {i}" for i in range(2000)],
                           "views": rng.integers(1, 5000, 2000), "conversion": rng.uniform(0, 30, 2000),
                           "fail_rate": rng.uniform(0, 20, 2000), "revenue": rng.uniform(0, 1e5, 2000),
                           "performance_category": rng.choice(list(charts.CATEGORY_COLORS), 2000)})
    amenities = pd.DataFrame({"name": [f"Amenity {i}" for i in range(25)], "lift": rng.uniform(-2, 12, 25),
                              "impact_tier": rng.choice(list(charts.TIER_COLORS), 25)})
    weeks = pd.date_range("2026-10-01", periods=6, freq="W")
    weekly = pd.DataFrame([{"week": w, "device": d, "rate": rng.uniform(5, 15)} for w in weeks
                           for d in charts.DEVICE_COLORS])
    answer = pd.DataFrame({"city": cities[:10], "total_viewers": rng.integers(500, 16000, 10)})
    return {"investment": investment, "funnel": funnel, "points": points, "amenities": amenities,
            "weekly": weekly, "answer": answer}


MARKETPLACE = {
    "investment matrix": lambda c, f: c.investment_matrix(f["investment"]),
    "conversion funnel": lambda c, f: c.funnel_chart(f["funnel"], "Conversion funnel"),
    "property scatter": lambda c, f: c.property_scatter(f["points"], "Views vs conversion"),
    "amenity bars": lambda c, f: c.amenity_bars(f["amenities"], "Confirmation lift"),
    "weekly rates": lambda c, f: c.weekly_rates(f["weekly"], "Weekly completion"),
}


def hand_built_charts() -> types.ModuleType | None:
    """The Marketplace charts module as it was at BASELINE (hand-built HoloViews elements)."""
    try:
        source = subprocess.run(["git", "show", f"{BASELINE}:dashboard/marketplace/charts.py"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("hand_built_charts")
    exec(compile(source, "hand_built_charts", "exec"), module.__dict__)
    return module


def timed(build) -> list[float]:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        build()
        samples.append(time.perf_counter() - started)
    return samples


def hvplot_answer_chart(frame: pd.DataFrame, title: str):
    """The assistant's answer chart, made with hvplot (what the app would do without the Bokeh path)."""
    frame = with_dates(frame)
    kind, x, y = choose_chart(frame)
    data = frame[[x, y]].dropna()
    if kind == "bar":
        top = data.groupby(x, sort=False)[y].sum().sort_values(ascending=False).head(25).reset_index()
        chart = top.hvplot.barh(x=x, y=y, title=title, xlabel=label(x), ylabel=label(y), color="#1976d2",
                                responsive=True)
    elif kind == "line":
        chart = data.sort_values(x).hvplot.line(x=x, y=y, title=title, xlabel=label(x), ylabel=label(y),
                                                responsive=True)
    else:
        chart = data.hvplot.scatter(x=x, y=y, title=title, xlabel=label(x), ylabel=label(y), responsive=True)
    return chart.opts(responsive=True, height=340, tools=["hover"])


def main() -> None:
    frames = demo_frames()
    baseline = hand_built_charts()
    print(f"Build and render to Bokeh models, {ROUNDS} rounds each (ms):")
    for name, make in MARKETPLACE.items():
        ours = percentiles(timed(lambda: hv.render(make(charts, frames))))
        line = f"  {name:18} hvplot p50 {ours['p50']:7.1f}  p95 {ours['p95']:7.1f}"
        if baseline is not None:
            theirs = percentiles(timed(lambda: hv.render(make(baseline, frames))))
            line += (f"   hand-built HoloViews p50 {theirs['p50']:7.1f}  p95 {theirs['p95']:7.1f}"
                     f"   ratio p50 {ours['p50'] / theirs['p50']:.2f}")
        print(line)
    bokeh = percentiles(timed(lambda: answer_chart(frames["answer"], "Which cities have the most viewers?")))
    hvplot_ = percentiles(timed(lambda: hv.render(hvplot_answer_chart(frames["answer"],
                                                                      "Which cities have the most viewers?"))))
    print(f"  {'answer chart (bar)':18} Bokeh p50 {bokeh['p50']:7.1f}  p95 {bokeh['p95']:7.1f}   hvplot p50 "
          f"{hvplot_['p50']:7.1f}  p95 {hvplot_['p95']:7.1f}   "
          f"ratio hvplot/Bokeh p50 {hvplot_['p50'] / bokeh['p50']:.1f}")


if __name__ == "__main__":
    main()
