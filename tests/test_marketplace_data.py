"""Marketplace figures checked against independent pandas computations on the raw demo tables."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from data.errors import AppError, Category, ValidationError
from data.marketplace import DATE_RANGES, Marketplace
from data.metrics import metrics
from data.paging import PageQuery

CITIES = ["Phuket", "Agra", "Reykjavik", None]


@pytest.fixture
def market(shared_db, tables):
    return Marketplace(shared_db, tables)


@pytest.fixture(scope="module")
def raw(shared_db):
    """The raw tables, read once, for pandas to compute the expected figures from."""
    from .conftest import default_tables
    tables = default_tables()

    def read(name):
        return shared_db.frame("raw", f"SELECT * FROM {getattr(tables, name)}")
    return {name: read(name) for name in ("city_investment", "city_funnel", "property_performance", "amenity_lift",
                                          "device_funnel", "device_diagnosis")}


def db_decimals(frame, column):
    """The column as exact decimals (frames read through the app carry NUMERIC as floats)."""
    return frame.assign(**{column: [Decimal(str(v)) for v in frame[column]]})


def in_city(frame, city):
    return frame if city is None else frame[frame["city"] == city]


@pytest.mark.parametrize("city", CITIES)
@pytest.mark.parametrize("date_range", list(DATE_RANGES))
def test_funnel_sums_per_range(market, raw, city, date_range):
    funnel = in_city(raw["city_funnel"], city)
    funnel = funnel[pd.to_datetime(funnel["event_date"]).dt.date > date.today() - timedelta(days=DATE_RANGES[date_range])]
    full = market.funnel(city, date_range, full=True).set_index("stage")
    for stage in ("viewers", "clickers", "searchers", "filterers", "initiated_bookers", "confirmed_bookers", "completers"):
        assert full.loc[stage, "count"] == funnel[stage].sum()
    simple = market.funnel(city, date_range, full=False)
    assert list(simple["label"]) == ["Viewers", "Bookers", "Completed"]
    expected = [funnel["viewers"].sum(), funnel["initiated_bookers"].sum(), funnel["completers"].sum()]
    assert list(simple["count"]) == expected
    assert simple["rate_from_previous"].iloc[1] == pytest.approx(round(expected[1] / expected[0] * 100, 2))
    assert simple["rate_from_top"].iloc[2] == pytest.approx(round(expected[2] / expected[0] * 100, 2))


def test_a_city_with_no_rows_in_the_range_gives_zeros(db, tables):
    market = Marketplace(db, tables)
    with db.transaction("remove_recent_agra") as conn:
        conn.execute(text(f"DELETE FROM {tables.city_funnel} WHERE city = 'Agra' AND event_date > CURRENT_DATE - 40"))
    funnel = market.funnel("Agra", "last_month", full=False)
    assert list(funnel["count"]) == [0, 0, 0]
    assert funnel["rate_from_previous"].isna().all()
    assert market.funnel("Agra", "last_quarter", full=False)["count"].iloc[0] > 0


def test_quadrant_counts_revenue_and_top_cities(market, raw):
    investment = raw["city_investment"]
    summary = market.quadrant_summary().set_index("quadrant")
    for quadrant, group in investment.groupby("quadrant"):
        assert summary.loc[quadrant, "cities"] == len(group)
        assert summary.loc[quadrant, "revenue"] == pytest.approx(group["estimated_revenue"].astype(float).sum())
        top = group.assign(r=group["estimated_revenue"].astype(float)).nlargest(3, "r")["city"].tolist()
        assert summary.loc[quadrant, "top_cities"] == top
    matrix = market.city_investment()
    assert len(matrix) == 80 and matrix["revenue"].is_monotonic_decreasing
    assert set(matrix.columns) == {"city", "demand", "conversion", "revenue", "quadrant"}


@pytest.mark.parametrize("city", CITIES)
@pytest.mark.parametrize("weeks", [6, 12])
def test_device_totals_and_weekly_rates(market, raw, city, weeks):
    devices = in_city(raw["device_funnel"], city)
    devices = devices[pd.to_datetime(devices["week_start"]).dt.date > date.today() - timedelta(days=7 * weeks)]
    assert devices["week_start"].nunique() == weeks
    expected = devices.groupby("device")[["viewers", "initiated_bookers", "completers"]].sum()
    shown = market.device_funnel(city, weeks).set_index("device")
    for device in ("desktop", "mobile", "tablet"):
        assert shown.loc[device, "viewers"] == expected.loc[device, "viewers"]
        assert shown.loc[device, "bookers"] == expected.loc[device, "initiated_bookers"]
        assert shown.loc[device, "completed"] == expected.loc[device, "completers"]
        assert shown.loc[device, "conversion"] == pytest.approx(
            round(expected.loc[device, "completers"] / expected.loc[device, "viewers"] * 100, 2))
    weekly = devices.groupby(["week_start", "device"])[["completers", "viewers"]].sum().reset_index()
    weekly["rate"] = weekly["completers"] / weekly["viewers"] * 100
    got = market.weekly_device_rates(city, weeks)
    assert len(got) == 3 * weeks
    # PostgreSQL rounds to two places half away from zero (28.125 -> 28.13), NumPy half to even:
    # compare with the exact rate, which rounding moves by at most half a hundredth.
    np.testing.assert_allclose(got["rate"].to_numpy(), weekly["rate"].to_numpy(), atol=0.005 + 1e-9)


def test_amenity_ranks_match_the_lift_table(market, raw):
    """The top-3 grid agrees with ranking amenity_lift for each city's most common property type."""
    properties, lift = raw["property_performance"], raw["amenity_lift"]
    counts = properties.groupby(["city", "property_type"]).size().rename("n").reset_index()
    main = counts.sort_values(["city", "n", "property_type"], ascending=[True, False, True]).drop_duplicates("city")
    grid = market.top_amenities_by_city()
    assert len(grid) == 80 * 3
    for row in main.itertuples():
        candidates = lift[(lift["city"] == row.city) & (lift["property_type"] == row.property_type)]
        candidates = candidates.assign(l=candidates["confirmation_lift"].astype(float)) \
                               .sort_values(["l", "amenity_name"], ascending=[False, True])
        shown = grid[grid["city"] == row.city].sort_values("rank")
        assert list(shown["name"]) == list(candidates["amenity_name"].head(3)), row.city
        assert (shown["property_type"] == row.property_type).all()


@pytest.mark.parametrize("city, ptype", [("Phuket", "Summer Getaway"), ("Aspen", "Ski Resort"),
                                         (None, "Urban Year-Round"), ("Agra", None), (None, None)])
def test_amenity_lift_and_tiers(market, raw, city, ptype):
    lift = raw["amenity_lift"]
    lift = in_city(lift, city)
    if ptype:
        lift = lift[lift["property_type"] == ptype]
    # Exact decimal means, rounded half-up as PostgreSQL's round(numeric) does.
    lift = db_decimals(lift, "confirmation_lift")
    means = lift.groupby("amenity_name")["confirmation_lift"].apply(
        lambda v: float((sum(v) / len(v)).quantize(Decimal("0.01"), ROUND_HALF_UP)))
    shown = market.amenity_lift(city, ptype).set_index("name")
    assert len(shown) == 25
    np.testing.assert_array_equal(shown.loc[means.index, "lift"].to_numpy(), means.to_numpy())
    assert shown["lift"].is_monotonic_decreasing
    tiers = np.where(shown["lift"] > 8, "must_have", np.where(shown["lift"] >= 4, "differentiator", "low_impact"))
    assert (shown["impact_tier"].to_numpy() == tiers).all()


@pytest.mark.parametrize("city", CITIES)
def test_performance_cards(market, raw, city):
    properties = in_city(raw["property_performance"], city)
    summary = market.performance_summary(city).set_index("category")
    for category, group in properties.groupby("performance_category"):
        assert summary.loc[category, "properties"] == len(group)
        top = group.assign(r=group["total_revenue"].astype(float)).sort_values(["r", "property_id"],
                                                                               ascending=[False, True]).head(3)
        assert [name for name, _ in summary.loc[category, "top"]] == list(top["property_name"])
    points = market.property_points(city)
    assert len(points) == min(len(properties), 2000)
    assert market.property_count(city) == len(properties)


def test_properties_are_paged_sorted_and_filtered_in_sql(market, raw):
    properties = raw["property_performance"]
    phuket = properties[properties["city"] == "Phuket"].assign(conv=lambda f: f["completion_rate"].astype(float))
    query = PageQuery(page=2, size=10, sort=(("conversion", True),), filters=(("name", "villa"), ("views", ">50")))
    page = market.property_page("Phuket", query)
    expected = phuket[phuket["property_name"].str.contains("villa", case=False) & (phuket["views"] > 50)] \
        .sort_values(["conv", "property_id"], ascending=[False, False])
    assert page.total == len(expected) and page.page == 2 and page.pages == -(-len(expected) // 10)
    assert list(page.rows["id"]) == list(expected["property_id"].iloc[10:20])
    selected = market.property_page("Phuket", PageQuery(size=50), tuple(expected["property_id"].iloc[:3]))
    assert sorted(selected.rows["id"]) == sorted(expected["property_id"].iloc[:3])


def test_diagnosis_for_a_city_and_across_cities(market, raw):
    diagnosis = raw["device_diagnosis"].set_index("city")
    shown = market.device_diagnosis("Phuket")
    assert shown["diagnosis"] == diagnosis.loc["Phuket", "diagnosis"]
    assert shown["device_gap"] == pytest.approx(float(diagnosis.loc["Phuket", "device_gap_pct"]))
    counts = market.diagnosis_counts().set_index("diagnosis")["cities"]
    assert counts.to_dict() == diagnosis["diagnosis"].value_counts().to_dict()


def test_reads_are_cached_with_the_seed_time_to_live(market):
    from data.marketplace import FIVE_MINUTES, HOUR, QUARTER_HOUR
    market.cities()
    market.city_investment()
    market.device_funnel("Phuket", 6)
    ttl = {name: cache.ttl for name, cache in market._caches._caches.items()}
    assert ttl == {"cities": HOUR, "city_investment": QUARTER_HOUR, "device_funnel": FIVE_MINUTES}
    before = metrics.cache()["by_name"].get("cities", {"hits": 0})["hits"]
    for _ in range(3):
        market.cities()
    assert metrics.cache()["by_name"]["cities"]["hits"] == before + 3


def test_refresh_reads_again(db, tables):
    market = Marketplace(db, tables)
    assert market.city_investment().iloc[0]["city"] == "Phuket"
    with db.transaction("change_synced_table") as conn:
        conn.execute(text(f"UPDATE {tables.city_investment} SET estimated_revenue = 99999999 WHERE city = 'Agra'"))
    assert market.city_investment().iloc[0]["city"] == "Phuket", "still cached"
    market.clear_cache()
    assert market.city_investment().iloc[0]["city"] == "Agra"


@pytest.mark.parametrize("hostile", ["Phuket'; DROP TABLE orders; --", "a%_\\", "Ag;ra", '"; SELECT 1; --'])
def test_quotes_and_semicolons_never_reach_sql(shared_db, tables, market, hostile):
    assert market.funnel(hostile, "last_month", full=False)["count"].sum() == 0
    page = market.property_page(None, PageQuery(filters=(("name", hostile), ("property_type", hostile))))
    assert page.total == 0
    assert shared_db.scalar("still_there", f"SELECT count(*) FROM {tables.orders}") == 5000


@pytest.mark.parametrize("query, message", [
    (PageQuery(filters=(("views", "lots"),)), "not a number filter"),
    (PageQuery(sort=(("password", False),)), "no column 'password'"),
    (PageQuery(filters=(("id; DROP", "1"),)), "no column"),
    (PageQuery(size=10_000), "1 to 500"),
])
def test_bad_table_requests_are_refused_with_a_reason(market, query, message):
    with pytest.raises(ValidationError) as caught:
        market.property_page(None, query)
    assert message in caught.value.message and caught.value.category is Category.VALIDATION


@pytest.mark.parametrize("bad", [("Phuket", "fortnight"), ("Phuket", "'; --")])
def test_unknown_date_range_is_refused(market, bad):
    with pytest.raises(AppError) as caught:
        market.funnel(*bad, full=False)
    assert caught.value.category is Category.VALIDATION
