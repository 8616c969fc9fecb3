"""Today's orders, live: every committed change (here, in another session or process, or by
plain SQL) reaches this view through the change feed within a couple of seconds."""
from __future__ import annotations

import holoviews as hv
import hvplot.pandas  # noqa: F401 - registers DataFrame.hvplot
import pandas as pd
import panel as pn
import param
from bokeh.models import BasicTicker, NumeralTickFormatter
from bokeh.models.widgets.tables import NumberFormatter


from .. import format as fmt
from ..markup import HTML, html
from ..widgets import CardRow, LiveChart, card_html, heading, on_change
from .state import OrdersState

STATUS_COLORS = {"pending": "#9e9e9e", "confirmed": "#1976d2", "processing": "#6a1b9a", "shipped": "#0288d1",
                 "delivered": "#2e7d32", "cancelled": "#d32f2f", "returned": "#ed6c02"}
COMMON = dict(responsive=True, toolbar="above", default_tools=["save", "reset"], framewise=True)


def _change(now: float, before: float) -> tuple[str, str]:
    if before == 0:
        return "none by this time yesterday", "default"
    delta = (now - before) / before * 100
    return f"{delta:+.0f}% vs same time yesterday", ("good" if delta >= 0 else "bad")


def whole_numbers() -> BasicTicker:
    """Ticks for counts: whole numbers only (a small count would otherwise tick at 0.5, shown as 0, 1, 1)."""
    return BasicTicker(min_interval=1)


class TodayView(pn.viewable.Viewer):
    state = param.ClassSelector(class_=OrdersState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.cards = CardRow()
        self.updated = HTML("")
        self.by_hour = LiveChart(s.today, self._hours)
        self.statuses = LiveChart(s.today, self._statuses)
        table = dict(show_index=False, disabled=True, sizing_mode="stretch_width", layout="fit_columns", height=230,
                     titles={"sku": "SKU", "name": "Product", "quantity": "Quantity", "revenue": "Revenue"},
                     formatters={"revenue": NumberFormatter(format="$0,0.00")})
        self.top_quantity = pn.widgets.Tabulator(pd.DataFrame(), **table)
        self.top_revenue = pn.widgets.Tabulator(pd.DataFrame(), **table)
        on_change(s.today, self._update)
        self._update()

    def _update(self) -> None:
        t = self.state.today()
        orders_change, orders_tone = _change(t["orders"], t["orders_yesterday"])
        revenue_change, revenue_tone = _change(t["revenue"], t["revenue_yesterday"])
        customers_change, customers_tone = _change(t["new_customers"], t["new_customers_yesterday"])
        average = t["revenue"] / t["orders"] if t["orders"] else None
        with pn.io.hold():
            self.cards.show([
                card_html("Orders today", f"{t['orders']:,}", f"{orders_change} ({t['orders_yesterday']:,})",
                          tone=orders_tone),
                card_html("Revenue today", fmt.money(t["revenue"]),
                          f"{revenue_change} ({fmt.money(t['revenue_yesterday'])})", tone=revenue_tone),
                card_html("Average order", fmt.money(average), "revenue ÷ orders today"),
                card_html("New customers today", f"{t['new_customers']:,}",
                          f"{customers_change} ({t['new_customers_yesterday']:,})", tone=customers_tone)])
            self.top_quantity.value = t["top_by_quantity"]
            self.top_revenue.value = t["top_by_revenue"]
            self.updated.object = html("<span style='opacity:.7'>As of {:%H:%M:%S} ({}); updates by itself when any "
                                       "order changes.</span>", t["as_of"], self.state.orders.timezone)

    def _hours(self, today: dict):
        hours = today["hours"]
        grid = pd.MultiIndex.from_product([["yesterday", "today"], range(24)], names=["day", "hour"])
        frame = hours.set_index(["day", "hour"])["orders"].reindex(grid, fill_value=0).reset_index()
        frame["hour"] = frame["hour"].map("{:02d}".format)      # categorical axis: one bar pair per hour
        bars = frame.hvplot.bar(x="hour", y="orders", responsive=True, by="day").opts(
            color=hv.dim("day").categorize({"today": "#1976d2", "yesterday": "#b0bec5"}), tools=["hover"],
            title="Orders by hour: today (blue) vs yesterday (grey)", xlabel="Hour of day", ylabel="Orders", height=320,
            multi_level=False, show_legend=True, yformatter=NumeralTickFormatter(format="0,0"), yticks=whole_numbers(),
            **COMMON)
        return bars, (None if frame["orders"].sum() else "No orders yesterday or today yet.")

    def _statuses(self, today: dict):
        statuses = today["statuses"]
        data = statuses.assign(color=statuses["status"].map(STATUS_COLORS))
        bars = data.hvplot.bar(x="status", y="orders", responsive=True, hover_cols=["color"]).opts(
            color="color", tools=["hover"], title="Today's orders by status", xlabel="", ylabel="Orders",
            height=320, yformatter=NumeralTickFormatter(format="0,0"), yticks=whole_numbers(), **COMMON)
        return bars, (None if statuses["orders"].sum() else "No orders today yet.")

    def __panel__(self):
        return pn.Column(
            self.updated, self.cards.pane,
            pn.Row(self.by_hour, self.statuses, sizing_mode="stretch_width"),
            pn.Row(pn.Column(heading("Top products by quantity (today)"), self.top_quantity,
                             sizing_mode="stretch_width"),
                   pn.Column(heading("Top products by revenue (today)"), self.top_revenue,
                             sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
