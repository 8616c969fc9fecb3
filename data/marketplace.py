"""Marketplace reads over the seven synced gold tables (seed 000's endpoints, as functions).

One `Marketplace` object per process; its reads are cached with seed 000's time-to-live values
(city list 1 h, investment matrix 15 min, properties and device metrics 5 min). `city=None`
means all cities. Results are shared between sessions: do not mutate them.
"""
from __future__ import annotations

import pandas as pd

from .cache import Caches, cached
from .database import Database
from .errors import ValidationError
from .paging import CHOICE, NUMBER, TEXT, WHOLE, Column, Listing, Page, PageQuery
from .tables import Tables

HOUR, QUARTER_HOUR, FIVE_MINUTES = 3600, 900, 300
DATE_RANGES = {"last_month": 30, "last_quarter": 90, "last_year": 365}
DATE_RANGE_LABELS = {"last_month": "last month", "last_quarter": "last quarter", "last_year": "last year"}
FUNNEL_STAGES = (("viewers", "Viewers"), ("clickers", "Clicked a listing"), ("searchers", "Searched"),
                 ("filterers", "Used filters"), ("initiated_bookers", "Started booking"),
                 ("confirmed_bookers", "Confirmed"), ("completers", "Completed"))
SIMPLE_STAGES = {"viewers": "Viewers", "initiated_bookers": "Bookers", "completers": "Completed"}
QUADRANTS = ("Protect & Expand", "Fix Conversion", "Grow Demand", "Maintain")
CATEGORIES = ("promote", "at_risk", "intervention")
IMPACT_TIERS = ("must_have", "differentiator", "low_impact")
DEVICES = ("desktop", "mobile", "tablet")
MAX_WEEKS = 52


def impact_tier_sql(expression: str) -> str:
    """Seed 000's thresholds: above 8 points must-have, 4 to 8 differentiator, below 4 low impact."""
    return (f"CASE WHEN {expression} > 8 THEN 'must_have' WHEN {expression} >= 4 THEN 'differentiator' "
            "ELSE 'low_impact' END")


class Marketplace:
    def __init__(self, db: Database, tables: Tables):
        self.db = db
        self.t = tables
        self._caches = Caches()
        self.property_listing = Listing(
            name="properties", source=tables.property_performance, key="id",
            columns={
                "id": Column("property_id", TEXT),
                "name": Column("property_name", TEXT),
                "city": Column("city", TEXT),
                "property_type": Column("property_type", CHOICE),
                "views": Column("views", WHOLE),
                "bookings": Column("completed_bookings", WHOLE),
                "conversion": Column("completion_rate", NUMBER),
                "fail_rate": Column("payment_fail_rate", NUMBER),
                "revenue": Column("total_revenue", NUMBER),
                "cancel_rate": Column("cancel_rate", NUMBER),
                "performance_category": Column("performance_category", CHOICE),
            },
            default_sort=(("views", True),))

    def clear_cache(self) -> None:
        self._caches.clear()

    # -- lists ----------------------------------------------------------------------------

    @cached("cities", HOUR)
    def cities(self) -> list[str]:
        rows = self.db.rows("cities", f"SELECT DISTINCT city FROM {self.t.city_investment} ORDER BY city")
        return [r["city"] for r in rows]

    @cached("property_types", HOUR)
    def property_types(self) -> list[str]:
        rows = self.db.rows("property_types",
                            f"SELECT DISTINCT property_type FROM {self.t.amenity_lift} ORDER BY property_type")
        return [r["property_type"] for r in rows]

    # -- overview -------------------------------------------------------------------------

    @cached("city_investment", QUARTER_HOUR)
    def city_investment(self) -> pd.DataFrame:
        return self.db.frame("city_investment", f"""
            SELECT city, total_viewers AS demand, conversion_rate::float8 AS conversion,
                   estimated_revenue::float8 AS revenue, quadrant
            FROM {self.t.city_investment} ORDER BY estimated_revenue DESC""")

    @cached("quadrant_summary", QUARTER_HOUR)
    def quadrant_summary(self, top: int = 3) -> pd.DataFrame:
        """Per quadrant: number of cities, total revenue and the top cities by revenue."""
        investment = self.city_investment()
        rows = []
        for quadrant in QUADRANTS:
            cities = investment[investment["quadrant"] == quadrant]
            rows.append({"quadrant": quadrant, "cities": len(cities), "revenue": float(cities["revenue"].sum()),
                         "top_cities": list(cities.nlargest(top, "revenue")["city"])})
        return pd.DataFrame(rows)

    @cached("city_funnel", FIVE_MINUTES)
    def city_funnel(self, city: str | None, date_range: str) -> pd.DataFrame:
        """All seven stages summed over the range, with stage-to-stage and overall rates (%)."""
        if date_range not in DATE_RANGES:
            raise ValidationError(f"'{date_range}' is not a date range; use {', '.join(DATE_RANGES)}.")
        sums = ", ".join(f"coalesce(sum({stage}), 0)::bigint AS {stage}" for stage, _ in FUNNEL_STAGES)
        row = self.db.rows("city_funnel", f"""
            SELECT {sums} FROM {self.t.city_funnel}
            WHERE event_date > CURRENT_DATE - :days AND (CAST(:city AS text) IS NULL OR city = :city)""",
                           {"days": DATE_RANGES[date_range], "city": city})[0]
        return funnel_frame([(stage, label, int(row[stage])) for stage, label in FUNNEL_STAGES])

    def funnel(self, city: str | None, date_range: str, *, full: bool) -> pd.DataFrame:
        return self._funnel(city, date_range, full)

    @cached("funnel", FIVE_MINUTES)
    def _funnel(self, city: str | None, date_range: str, full: bool) -> pd.DataFrame:
        """The 3-stage funnel (viewers, bookers, completed) or all seven stages."""
        stages = self.city_funnel(city, date_range)
        if full:
            return stages
        simple = stages[stages["stage"].isin(list(SIMPLE_STAGES))]
        return funnel_frame([(s, SIMPLE_STAGES[s], int(c)) for s, c in zip(simple["stage"], simple["count"])])

    # -- properties -----------------------------------------------------------------------

    @cached("property_points", FIVE_MINUTES)
    def property_points(self, city: str | None, limit: int = 2000) -> pd.DataFrame:
        """Views vs conversion for the scatter: every property of a city, or the most viewed overall."""
        return self.db.frame("property_points", f"""
            SELECT property_id AS id, property_name AS name, city, property_type, views,
                   completed_bookings AS bookings, completion_rate::float8 AS conversion,
                   payment_fail_rate::float8 AS fail_rate, total_revenue::float8 AS revenue,
                   cancel_rate::float8 AS cancel_rate, performance_category
            FROM {self.t.property_performance}
            WHERE CAST(:city AS text) IS NULL OR city = :city
            ORDER BY views DESC, property_id LIMIT :limit""", {"city": city, "limit": limit})

    @cached("property_count", FIVE_MINUTES)
    def property_count(self, city: str | None) -> int:
        return int(self.db.scalar("property_count", f"SELECT count(*) FROM {self.t.property_performance} "
                                  "WHERE CAST(:city AS text) IS NULL OR city = :city", {"city": city}))

    @cached("performance_summary", FIVE_MINUTES)
    def performance_summary(self, city: str | None, top: int = 3) -> pd.DataFrame:
        """Per performance category: how many properties, and the top ones by revenue."""
        frame = self.db.frame("performance_summary", f"""
            WITH ranked AS (
                SELECT performance_category, property_name, total_revenue,
                       count(*) OVER (PARTITION BY performance_category) AS properties,
                       row_number() OVER (PARTITION BY performance_category
                                          ORDER BY total_revenue DESC, property_id) AS position
                FROM {self.t.property_performance}
                WHERE CAST(:city AS text) IS NULL OR city = :city)
            SELECT performance_category AS category, properties, property_name AS name,
                   total_revenue::float8 AS revenue
            FROM ranked WHERE position <= :top ORDER BY category, position""", {"city": city, "top": top})
        rows = []
        for category in CATEGORIES:
            part = frame[frame["category"] == category]
            rows.append({"category": category, "properties": int(part["properties"].iloc[0]) if len(part) else 0,
                         "top": list(zip(part["name"], part["revenue"]))})
        return pd.DataFrame(rows)

    @cached("property_page", FIVE_MINUTES)
    def property_page(self, city: str | None, query: PageQuery, ids: tuple[str, ...] | None = None) -> Page:
        """One page of a city's properties, sorted and filtered in SQL; `ids` narrows to a selection."""
        clauses, params = [], {}
        if city is not None:
            clauses.append("city = :city")
            params["city"] = city
        if ids is not None:
            clauses.append("property_id = ANY(:ids)")
            params["ids"] = list(ids)
        return self.property_listing.fetch(self.db, query, where=" AND ".join(clauses), params=params)

    # -- amenities ------------------------------------------------------------------------

    @cached("amenity_lift", FIVE_MINUTES)
    def amenity_lift(self, city: str | None, property_type: str | None) -> pd.DataFrame:
        """Confirmation lift by amenity; across several cities or types, the mean lift and its tier."""
        if city is not None and property_type is not None:
            return self.db.frame("amenity_lift", f"""
                SELECT amenity_name AS name, confirmation_lift::float8 AS lift, impact_tier
                FROM {self.t.amenity_lift} WHERE city = :city AND property_type = :ptype
                ORDER BY confirmation_lift DESC, amenity_name""", {"city": city, "ptype": property_type})
        return self.db.frame("amenity_lift", f"""
            SELECT amenity_name AS name, round(avg(confirmation_lift), 2)::float8 AS lift,
                   {impact_tier_sql('round(avg(confirmation_lift), 2)')} AS impact_tier
            FROM {self.t.amenity_lift}
            WHERE (CAST(:city AS text) IS NULL OR city = :city)
              AND (CAST(:ptype AS text) IS NULL OR property_type = :ptype)
            GROUP BY amenity_name ORDER BY lift DESC, name""", {"city": city, "ptype": property_type})

    @cached("top_amenities", QUARTER_HOUR)
    def top_amenities_by_city(self, top: int = 3) -> pd.DataFrame:
        return self.db.frame("top_amenities", f"""
            SELECT city, property_type, rank, amenity_name AS name, confirmation_lift::float8 AS lift
            FROM {self.t.amenity_city_top} WHERE rank <= :top ORDER BY city, rank""", {"top": top})

    # -- demand ---------------------------------------------------------------------------

    def _check_weeks(self, weeks: int) -> int:
        if not 1 <= weeks <= MAX_WEEKS:
            raise ValidationError(f"Choose between 1 and {MAX_WEEKS} weeks.")
        return weeks

    @cached("device_funnel", FIVE_MINUTES)
    def device_funnel(self, city: str | None, weeks: int) -> pd.DataFrame:
        """Viewers, bookers and completed per device over the last `weeks` weeks, with rates (%)."""
        frame = self.db.frame("device_funnel", f"""
            SELECT device, sum(viewers)::bigint AS viewers, sum(initiated_bookers)::bigint AS bookers,
                   sum(completers)::bigint AS completed
            FROM {self.t.device_funnel}
            WHERE week_start > CURRENT_DATE - 7 * :weeks AND (CAST(:city AS text) IS NULL OR city = :city)
            GROUP BY device""", {"weeks": self._check_weeks(weeks), "city": city})
        frame = frame.set_index("device").reindex(list(DEVICES), fill_value=0).reset_index()
        frame["booking_rate"] = _rate(frame["bookers"], frame["viewers"])
        frame["completion_rate"] = _rate(frame["completed"], frame["bookers"])
        frame["conversion"] = _rate(frame["completed"], frame["viewers"])
        return frame

    @cached("weekly_device_rates", FIVE_MINUTES)
    def weekly_device_rates(self, city: str | None, weeks: int) -> pd.DataFrame:
        """Completion rate (completed / viewers, %) per week and device."""
        return self.db.frame("weekly_device_rates", f"""
            SELECT week_start AS week, device,
                   round(100.0 * sum(completers) / nullif(sum(viewers), 0), 2)::float8 AS rate
            FROM {self.t.device_funnel}
            WHERE week_start > CURRENT_DATE - 7 * :weeks AND (CAST(:city AS text) IS NULL OR city = :city)
            GROUP BY week_start, device ORDER BY week_start, device""",
                             {"weeks": self._check_weeks(weeks), "city": city})

    @cached("device_diagnosis", FIVE_MINUTES)
    def device_diagnosis(self, city: str) -> dict | None:
        rows = self.db.rows("device_diagnosis", f"""
            SELECT city, desktop_rate::float8 AS desktop_rate, mobile_rate::float8 AS mobile_rate,
                   tablet_rate::float8 AS tablet_rate, device_gap_pct::float8 AS device_gap, diagnosis, mobile_trend
            FROM {self.t.device_diagnosis} WHERE city = :city""", {"city": city})
        return rows[0] if rows else None

    @cached("diagnosis_counts", FIVE_MINUTES)
    def diagnosis_counts(self) -> pd.DataFrame:
        return self.db.frame("diagnosis_counts", f"""
            SELECT diagnosis, count(*) AS cities, round(avg(device_gap_pct), 1)::float8 AS mean_gap
            FROM {self.t.device_diagnosis} GROUP BY diagnosis ORDER BY cities DESC""")


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator.where(denominator > 0) * 100).round(2)


def funnel_frame(stages: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(stages, columns=["stage", "label", "count"])
    frame["rate_from_previous"] = _rate(frame["count"], frame["count"].shift(1))
    frame["rate_from_top"] = _rate(frame["count"], pd.Series([frame["count"].iloc[0]] * len(frame)))
    return frame
