"""What a user chose in the Marketplace workspace, and the data that follows from it."""
from __future__ import annotations

import pandas as pd
import param

from data.assistant.selection import Selection
from data.marketplace import DATE_RANGE_LABELS, DATE_RANGES, MAX_WEEKS, Marketplace
from data.paging import Page, PageQuery
from data.refresh import Refresh

from ..state import AppState, ChartQuestion

ALL_TYPES = "All property types"
TABS = ("overview", "properties", "amenities", "demand")


class MarketplaceState(param.Parameterized):
    """Filters of the four tabs; derived data comes from `Marketplace` reads (cached per process).
    The city lives in the shared `AppState`, so every workspace sees the same one."""

    app = param.ClassSelector(class_=AppState, doc="The session's shared state (city, user).")
    tab = param.Selector(default="overview", objects=list(TABS), doc="The tab on screen.")
    date_range = param.Selector(default="last_quarter", objects=list(DATE_RANGES),
                                doc="Period of the conversion funnel.")
    full_funnel = param.Boolean(default=False, doc="All seven funnel stages instead of three.")
    property_type = param.Selector(default=ALL_TYPES, objects=[ALL_TYPES], doc="Property type for amenity lift.")
    weeks = param.Integer(default=6, bounds=(2, MAX_WEEKS), doc="Weeks of device trends to show.")
    chart_selection = param.List(default=[], doc="Property ids picked in the scatter (the table narrows to them).")
    table_selection = param.List(default=[], doc="Property ids ticked in the table (the scatter highlights them).")
    version = param.Integer(default=0, doc="Bumped by Refresh so every view reads again.")

    LINK = {"tab": "tab", "date_range": "range", "property_type": "type", "weeks": "weeks"}   # -> the link

    def __init__(self, app: AppState, queries: Marketplace, refresh: Refresh | None = None, **params):
        """`refresh`: forgets cached reads in every process (without it, this process's only)."""
        property_type = params.pop("property_type", ALL_TYPES)     # one of the types read below
        super().__init__(app=app, **params)
        self.queries = queries
        self._refresh = refresh
        self.param.property_type.objects = [ALL_TYPES, *queries.property_types()]
        self.property_type = property_type

    # -- shared filters -------------------------------------------------------------------

    @property
    def city(self) -> str | None:
        return self.app.city_filter

    @property
    def city_label(self) -> str:
        return self.app.city

    @property
    def property_type_filter(self) -> str | None:
        return None if self.property_type == ALL_TYPES else self.property_type

    @property
    def range_label(self) -> str:
        return DATE_RANGE_LABELS[self.date_range]

    def refresh(self) -> None:
        """Forget cached reads (for every session, in every process) and read again."""
        if self._refresh is not None:
            self._refresh.everywhere()
        else:
            self.queries.clear_cache()
        self.version += 1

    @param.depends("app.city", watch=True)
    def _forget_selection(self) -> None:
        self.param.update(chart_selection=[], table_selection=[])

    # -- asking the assistant about a selection -----------------------------------------------

    def ask_about_cities(self, cities: list[str]) -> None:
        """Open the Assistant with a question about the cities picked in the investment matrix."""
        self.app.ask_assistant(ChartQuestion(
            f"Compare demand, conversion and estimated revenue for {_listed(cities)}.",
            Selection("city", tuple(cities), "cities")))

    def ask_about_properties(self, ids: list[str]) -> None:
        """Open the Assistant with a question about the properties picked in the scatter."""
        names = self.points().set_index("id").reindex(ids)["name"].dropna().tolist()
        self.app.ask_assistant(ChartQuestion(
            f"Compare views, conversion, payment failures and revenue for these {len(ids):,} properties: "
            f"{_listed(names)}.", Selection("property_id", tuple(str(i) for i in ids), "properties")))

    # -- overview -------------------------------------------------------------------------

    @param.depends("version")
    def investment(self) -> pd.DataFrame:
        return self.queries.city_investment()

    @param.depends("version")
    def quadrants(self) -> pd.DataFrame:
        return self.queries.quadrant_summary()

    @param.depends("app.city", "date_range", "full_funnel", "version")
    def funnel(self) -> pd.DataFrame:
        return self.queries.funnel(self.city, self.date_range, full=self.full_funnel)

    # -- properties -----------------------------------------------------------------------

    @param.depends("app.city", "version")
    def points(self) -> pd.DataFrame:
        return self.queries.property_points(self.city)

    @param.depends("table_selection", "app.city", "version")
    def ticked_points(self) -> pd.DataFrame:
        """The properties ticked in the table, where the scatter draws them."""
        points = self.points()
        return points[points["id"].isin(self.table_selection)]

    @param.depends("app.city", "version")
    def property_count(self) -> int:
        return self.queries.property_count(self.city)

    @param.depends("app.city", "version")
    def categories(self) -> pd.DataFrame:
        return self.queries.performance_summary(self.city)

    def property_page(self, query: PageQuery) -> Page:
        ids = tuple(sorted(self.chart_selection)) if self.chart_selection else None
        return self.queries.property_page(self.city, query, ids)

    # -- amenities ------------------------------------------------------------------------

    @param.depends("app.city", "property_type", "version")
    def amenities(self) -> pd.DataFrame:
        return self.queries.amenity_lift(self.city, self.property_type_filter)

    @param.depends("version")
    def top_amenities(self) -> pd.DataFrame:
        return self.queries.top_amenities_by_city()

    # -- demand ---------------------------------------------------------------------------

    @param.depends("app.city", "weeks", "version")
    def devices(self) -> pd.DataFrame:
        return self.queries.device_funnel(self.city, self.weeks)

    @param.depends("app.city", "weeks", "version")
    def weekly(self) -> pd.DataFrame:
        return self.queries.weekly_device_rates(self.city, self.weeks)

    @param.depends("app.city", "version")
    def diagnosis(self) -> dict | None:
        return self.queries.device_diagnosis(self.city) if self.city else None

    @param.depends("version")
    def diagnosis_counts(self) -> pd.DataFrame:
        return self.queries.diagnosis_counts()


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
