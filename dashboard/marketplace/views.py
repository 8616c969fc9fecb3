"""The Marketplace workspace: Overview, Properties, Amenities and Demand tabs.

Views are built once per session and updated in place: charts are DynamicMaps (new data in the
same figure), cards are single HTML models. Rebuilding Bokeh figures on every filter change cost
ten times more than the queries behind them.
"""
from __future__ import annotations

import logging
from typing import Callable

import holoviews as hv
import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from bokeh.models.widgets.tables import NumberFormatter

from data.assistant.selection import MAX_VALUES
from data.errors import AppError, Category, classify
from data.marketplace import DATE_RANGE_LABELS, DEVICES

from .. import format as fmt
from ..markup import HTML, alert, html, literal_markdown
from ..widgets import CardRow, LazyTabs, LiveChart, SqlTable, card_html, chart_pane, follows, heading, on_change
from . import charts
from .state import TABS, MarketplaceState

TAB_TITLES = {"overview": "Overview", "properties": "Properties", "amenities": "Amenities", "demand": "Demand"}
DIAGNOSIS_TEXT = {"likely_ux_issue": "Likely a mobile UX issue", "monitor": "Worth monitoring", "healthy": "Healthy"}
DIAGNOSIS_SEVERITY = {"likely_ux_issue": "error", "monitor": "warning", "healthy": "success"}


def refresh_cards(row: CardRow, build: Callable[[], list[str]]) -> None:
    """Re-render a card row; a failed read shows its message in the row instead."""
    try:
        row.show(build())
    except Exception as exc:  # the message is shown where the cards were
        error = classify(exc)
        if not isinstance(exc, AppError):
            logging.getLogger(__name__).exception("cards failed")
        row.show(empty=error.message)


class OverviewTab(pn.viewable.Viewer):
    state = param.ClassSelector(class_=MarketplaceState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.quadrants = CardRow()
        self.note = HTML("")
        # Made first, so it is drawn first after the first view: it takes a quarter of the matrix's time.
        self.funnel = LiveChart(s.funnel, self._funnel)
        # The cities are a DynamicMap of their own: a selection stream on an overlay reports nothing.
        self.cities = hv.DynamicMap(follows(s.investment, charts.matrix_points))
        self.matrix = chart_pane((hv.DynamicMap(follows(s.investment, charts.matrix_guides)) * self.cities *
                                  hv.DynamicMap(follows(s.investment, charts.matrix_labels))).opts(
                                      **charts.matrix_options()), height=charts.MATRIX_HEIGHT)
        self.picked = hv.streams.Selection1D(source=self.cities)
        self.ask = AskButton("city", "cities", lambda: s.ask_about_cities(self.picked_cities()))
        self.picked.param.watch(lambda _e: self.ask.show(len(self.picked_cities())), "index")
        on_change(s.quadrants, self._update_cards)
        self._update_cards()

    def picked_cities(self) -> list[str]:
        cities = self.state.investment()["city"]
        return [cities.iloc[i] for i in self.picked.index if i < len(cities)]

    def _update_cards(self, *_) -> None:
        refresh_cards(self.quadrants, lambda: [
            card_html(row.quadrant, fmt.plural(row.cities, "city", "cities"),
                      f"{fmt.money(row.revenue)[:-3]} revenue · top cities:",
                      accent=charts.QUADRANT_COLORS[row.quadrant], items=row.top_cities)
            for row in self.state.quadrants().itertuples()])

    def _funnel(self, stages: pd.DataFrame):
        place = self.state.city_label if self.state.city else "all cities"
        chart = charts.funnel_chart(stages, f"Conversion funnel: {place}, {self.state.range_label}")
        if stages["count"].iloc[0] == 0:
            self.note.object = ""
            return chart, f"No visitors for {place} in the {self.state.range_label}."
        if stages["count"].iloc[-1] == 0:
            self.note.object = html("<i>No bookings for {} in the {}.</i>", place, self.state.range_label)
        else:
            self.note.object = html("Overall conversion: <b>{}</b> of viewers completed a booking.",
                                    f"{stages['rate_from_top'].iloc[-1]:.2f}%")
        return chart, None

    def __panel__(self):
        s = self.state
        controls = pn.Row(
            pmui.RadioButtonGroup.from_param(s.param.date_range, label="Period", size="small", width=390,
                                             options={v.capitalize(): k for k, v in DATE_RANGE_LABELS.items()}),
            pmui.Switch.from_param(s.param.full_funnel, label="All seven stages"), align="center")
        return pn.Column(
            self.quadrants.pane,
            pn.Row(pn.Column(self.matrix, self.ask.row, sizing_mode="stretch_width"),
                   pn.Column(controls, self.funnel, self.note, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width")


class PropertiesTab(pn.viewable.Viewer):
    state = param.ClassSelector(class_=MarketplaceState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.cards = CardRow()
        self.scatter = hv.DynamicMap(follows(s.points, self._scatter))
        self.selection = hv.streams.Selection1D(source=self.scatter)
        self.selection.param.watch(self._on_chart_select, "index")
        self.rings = hv.DynamicMap(follows(s.ticked_points, charts.highlight))
        self.note = HTML("")
        self.clear = pmui.Button(label="Clear selection", variant="outlined", size="small", visible=False)
        self.clear.on_click(self.clear_selection)
        self.ask = AskButton("property", "properties", lambda: s.ask_about_properties(list(s.chart_selection)))
        self.table = SqlTable(s.property_page, key="id", page_size=20, header_filters={
            "name": {"type": "input", "func": "like", "placeholder": "contains…"},
            "property_type": {"type": "input", "func": "like", "placeholder": "type…"},
            "views": {"type": "input", "placeholder": "e.g. >100"},
            "conversion": {"type": "input", "placeholder": "e.g. 10..20"},
            "fail_rate": {"type": "input", "placeholder": "e.g. >15"},
            "performance_category": {"type": "input", "func": "like", "placeholder": "category…"},
        }, titles={"id": "ID", "name": "Property", "city": "City", "property_type": "Type", "views": "Views",
                   "bookings": "Bookings", "conversion": "Conversion %", "fail_rate": "Payment fail %",
                   "revenue": "Revenue", "cancel_rate": "Cancel %", "performance_category": "Category"},
            formatters={"views": NumberFormatter(format="0,0"), "conversion": NumberFormatter(format="0.00"),
                        "fail_rate": NumberFormatter(format="0.00"), "cancel_rate": NumberFormatter(format="0.00"),
                        "revenue": NumberFormatter(format="$0,0"),
                        "performance_category": {"type": "lookup", **charts.CATEGORY_LABELS}})
        self.table.param.watch(lambda e: s.param.update(table_selection=list(e.new)), "selected_keys")
        s.app.param.watch(self._on_city, "city")
        s.param.watch(self._on_chart_selection, "chart_selection")
        s.param.watch(self._on_version, "version")
        self._on_city()

    def _on_city(self, *_) -> None:
        self._update_cards()
        self.table.reset()

    def _on_version(self, *_) -> None:
        self._update_cards()
        self.table.refresh()

    def _update_cards(self) -> None:
        refresh_cards(self.cards, lambda: [
            card_html(charts.CATEGORY_LABELS[row.category], fmt.plural(row.properties, "property", "properties"),
                      "top by revenue:", accent=charts.CATEGORY_COLORS[row.category],
                      items=[f"{name} ({fmt.money(revenue)[:-3]})" for name, revenue in row.top])
            for row in self.state.categories().itertuples()])

    def _scatter(self, points: pd.DataFrame):
        total = self.state.property_count()
        shown = (f"{len(points):,} properties" if len(points) == total
                 else f"the {len(points):,} most viewed of {total:,} properties")
        title = (f"Views vs conversion: {self.state.city_label}, {shown}" if len(points)
                 else f"No properties in {self.state.city_label}")
        return charts.property_scatter(points, title)

    def _on_chart_select(self, event) -> None:
        points = self.state.points()
        self.state.chart_selection = [points.iloc[i]["id"] for i in event.new if i < len(points)]

    def _on_chart_selection(self, event) -> None:
        picked = event.new
        self.note.object = (html("The table shows the <b>{}</b> properties selected in the chart.", f"{len(picked):,}")
                            if picked else HINT)
        self.clear.visible = bool(picked)
        self.ask.show(len(picked))
        self.table.reset()
        self.table.check(picked)

    def clear_selection(self, _=None) -> None:
        self.selection.event(index=[])
        self.state.param.update(chart_selection=[], table_selection=[])

    def __panel__(self):
        self.note.object = HINT
        return pn.Column(
            self.cards.pane,
            chart_pane(self.scatter * self.rings),
            pn.Row(self.note, self.clear, self.ask.button, align="center"),
            self.table, sizing_mode="stretch_width")


class AskButton:
    """"Ask about these": shown while something is selected in a chart, it opens the Assistant with a
    question about the selection (at most MAX_VALUES of them fit in a question)."""

    def __init__(self, one: str, many: str, ask: Callable[[], None]):
        self.one, self.many = one, many
        self.button = pmui.Button(label="", icon="forum", variant="contained", size="small", visible=False)
        self.button.on_click(lambda _e: ask())
        self.row = pn.Row(self.button, margin=(0, 0, 0, 8))

    def show(self, count: int) -> None:
        too_many = count > MAX_VALUES
        self.button.param.update(
            visible=count > 0, disabled=too_many,
            label=(f"Select at most {MAX_VALUES} {self.many} to ask about them" if too_many
                   else f"Ask about these {count:,} {self.many}" if count > 1 else f"Ask about this {self.one}"))


HINT = html("<span style='opacity:.75'>Drag a box or lasso in the chart to narrow the table; "
            "tick rows to ring them in the chart.</span>")


class AmenitiesTab(pn.viewable.Viewer):
    state = param.ClassSelector(class_=MarketplaceState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.insights = CardRow()
        self.bars = LiveChart(s.amenities, self._bars)
        self.grid = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True, pagination="local",
                                         page_size=10, sizing_mode="stretch_width", layout="fit_columns",
                                         header_filters={"City": {"type": "input", "func": "like",
                                                                  "placeholder": "city…"}})
        on_change(s.amenities, self._update_insights)
        on_change(s.top_amenities, self._update_grid)
        self._update_insights()
        self._update_grid()

    def _scope(self) -> str:
        s = self.state
        city = s.city_label if s.city else "all cities"
        kind = s.property_type if s.property_type_filter else "all property types"
        return f"{city}, {kind.lower()}"

    def _update_insights(self, *_) -> None:
        def build():
            amenities = self.state.amenities()
            if amenities.empty:
                return []
            top = amenities.iloc[0]
            differentiators = amenities[amenities["impact_tier"] == "differentiator"]
            must = amenities[amenities["impact_tier"] == "must_have"]
            best = differentiators.iloc[0] if len(differentiators) else None
            return [card_html("Top amenity", top["name"], f"+{top['lift']:.2f} points of confirmation rate",
                              accent=charts.TIER_COLORS[top["impact_tier"]]),
                    card_html("Best differentiator", best["name"] if best is not None else "none",
                              f"+{best['lift']:.2f} points" if best is not None else "no amenity lifts 4–8 points",
                              accent=charts.TIER_COLORS["differentiator"]),
                    card_html("Must-haves", str(len(must)),
                              ", ".join(must["name"]) or "no amenity lifts more than 8 points",
                              accent=charts.TIER_COLORS["must_have"])]
        refresh_cards(self.insights, build)

    def _bars(self, amenities: pd.DataFrame):
        averaged = "" if self.state.city and self.state.property_type_filter else " (mean over the selection)"
        chart = charts.amenity_bars(amenities, f"Confirmation lift by amenity: {self._scope()}{averaged}")
        return chart, (f"No amenity data for {self._scope()}." if amenities.empty else None)

    def _update_grid(self, *_) -> None:
        top = self.state.top_amenities()
        grid = top.assign(entry=[f"{n} (+{lift:.2f})" for n, lift in zip(top["name"], top["lift"])]) \
                  .pivot(index=["city", "property_type"], columns="rank", values="entry").reset_index()
        grid.columns = ["City", "Property type", *[f"#{r}" for r in grid.columns[2:]]]
        self.grid.value = grid

    def __panel__(self):
        return pn.Column(
            pmui.Select.from_param(self.state.param.property_type, label="Property type", width=260),
            self.insights.pane, self.bars,
            heading("Top 3 amenities per city (for its most common property type)"), self.grid,
            sizing_mode="stretch_width")


class DemandTab(pn.viewable.Viewer):
    state = param.ClassSelector(class_=MarketplaceState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.banner = alert("", severity="info")
        self.devices = CardRow()
        self.trend = LiveChart(s.weekly, self._trend)
        on_change(s.devices, self._update)
        self._update()

    def _update(self, *_) -> None:
        with pn.io.hold():
            self._update_banner()
            refresh_cards(self.devices, self._device_cards)

    def _device_cards(self) -> list[str]:
        devices = self.state.devices().set_index("device")
        if devices["viewers"].sum() == 0:
            raise AppError(f"No visitors for {self.state.city_label} in the last {self.state.weeks} weeks.",
                           category=Category.VALIDATION)
        return [card_html(
            device.capitalize(), f"{_pct(devices.loc[device, 'conversion'])} convert",
            f"{devices.loc[device, 'viewers']:,} viewers → {devices.loc[device, 'bookers']:,} bookers "
            f"({_pct(devices.loc[device, 'booking_rate'])}) → {devices.loc[device, 'completed']:,} completed "
            f"({_pct(devices.loc[device, 'completion_rate'])} of bookers)", accent=charts.DEVICE_COLORS[device])
            for device in DEVICES]

    def _update_banner(self) -> None:
        try:
            banner = self._banner()
        except AppError as exc:
            banner = {"object": exc.message, "title": "", "severity": "error"}
        self.banner.param.update(banner, object=literal_markdown(banner["object"]))

    def _banner(self) -> dict:
        s = self.state
        if s.city is None:
            counts = s.diagnosis_counts()
            parts = [f"{row.cities} {DIAGNOSIS_TEXT[row.diagnosis].lower()} (mean gap {row.mean_gap:.1f}%)"
                     for row in counts.itertuples()]
            return {"object": "Pick a city for its device diagnosis. Across cities: " + "; ".join(parts) + ".",
                    "title": "Device diagnosis", "severity": "info"}
        diagnosis = s.diagnosis()
        if diagnosis is None:
            return {"object": f"No device diagnosis for {s.city_label} yet.", "title": "", "severity": "info"}
        gap = diagnosis["device_gap"]
        text = (f"Mobile converts {abs(gap):.1f}% {'below' if gap >= 0 else 'above'} desktop "
                f"(desktop {diagnosis['desktop_rate']:.2f}%, mobile {diagnosis['mobile_rate']:.2f}%, "
                f"tablet {diagnosis['tablet_rate']:.2f}%); mobile trend: {diagnosis['mobile_trend']}.")
        return {"object": text, "title": f"{DIAGNOSIS_TEXT[diagnosis['diagnosis']]}: {s.city_label}",
                "severity": DIAGNOSIS_SEVERITY[diagnosis["diagnosis"]]}

    def _trend(self, weekly: pd.DataFrame):
        weeks = self.state.weeks
        title = f"Weekly completion rate by device: {self.state.city_label}, last {weeks} weeks"
        empty = weekly.empty or weekly["rate"].isna().all()
        return charts.weekly_rates(weekly, title), (
            f"No weekly data for {self.state.city_label} in the last {weeks} weeks." if empty else None)

    def __panel__(self):
        return pn.Column(
            self.banner,
            pmui.IntSlider.from_param(self.state.param.weeks, label="Weeks of history", width=320),
            self.devices.pane, self.trend, sizing_mode="stretch_width")


def _pct(value) -> str:
    return "–" if pd.isna(value) else f"{value:.1f}%"


class MarketplaceView(pn.viewable.Viewer):
    """The workspace: shared city, refresh, and the four tabs (built when first opened)."""

    state = param.ClassSelector(class_=MarketplaceState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        builders = {"overview": OverviewTab, "properties": PropertiesTab, "amenities": AmenitiesTab,
                    "demand": DemandTab}
        self.tabs = LazyTabs.of(s.param.tab, {name: (TAB_TITLES[name], lambda b=builders[name]: b(state=s))
                                              for name in TABS})

    def __panel__(self):
        s = self.state
        refresh = pmui.Button(label="Refresh data", icon="refresh", variant="outlined", margin=(18, 10))
        refresh.on_click(lambda _: s.refresh())
        city = pmui.AutocompleteInput.from_param(s.app.param.city, label="City", options=s.app.param.city.objects,
                                                 width=260, restrict=True)
        freshness = HTML(html(
            "<span style='opacity:.7;font-size:.85rem'>Synced gold tables, cached: city list 1 h, investment "
            "matrix 15 min, properties and demand 5 min. Refresh reads everything again.</span>"), margin=(24, 10))
        return pn.Column(pn.Row(city, refresh, freshness), self.tabs, sizing_mode="stretch_width")
