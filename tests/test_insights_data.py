"""The insight watcher on the demo data: the anomalies planted in it are found, noise is not news,
each finding is stored once, one process runs the rules per interval, and a dismissal says who."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from data.changes import ChangeFeed
from data.demo.marketplace import planted_anomaly_city
from data.insights import CHANNEL, Insights, Thresholds, confidence, rate_z

from .conftest import app_role_database


def findings(insights: Insights, rule: str):
    with insights.db.transaction("test") as conn:
        return [f for f in insights.check(conn).findings if f.rule == rule]


@pytest.fixture
def insights(db, tables):
    return Insights(db, tables)


def plant_orders(db, tables, *, days_back: int, count: int, amount: float = 80.0) -> None:
    """`count` orders placed `days_back` days ago, between that day's midnight and this time of day."""
    with db.transaction("plant") as conn:
        conn.execute(text(f"""
            INSERT INTO {tables.orders} (customer_id, items_subtotal, item_count, created_at, modified_at)
            SELECT (SELECT min(customer_id) FROM {tables.customers}), :amount, 1, t, t
            FROM (SELECT date_trunc('day', now()) - make_interval(days => :back)
                         + random() * (now() - date_trunc('day', now())) AS t
                  FROM generate_series(1, :count)) AS planted"""),
            {"back": days_back, "count": count, "amount": amount})


# -- the statistics --------------------------------------------------------------------------

def test_confidence_is_the_two_sided_normal_one():
    assert confidence(1.959964) == pytest.approx(0.95, abs=1e-6)
    assert confidence(-3.290527) == pytest.approx(0.999, abs=1e-6)
    assert confidence(0) == 0


def test_a_rate_difference_needs_enough_trials_to_be_sure():
    small = confidence(rate_z(5, 50, 100, 500))      # 10 % against 20 %, few viewers
    large = confidence(rate_z(50, 500, 1000, 5000))  # the same rates, ten times the viewers
    assert small < 0.99 < large
    assert rate_z(0, 0, 10, 100) == 0                 # nothing to compare


# -- each rule on the demo data's planted anomalies -----------------------------------------

def test_the_planted_conversion_drop_is_found_with_its_figures(insights):
    city = planted_anomaly_city()
    found = {f.subject: f for f in findings(insights, "city_conversion")}
    assert city in found
    drop = found[city]
    assert drop.change <= -0.5 and drop.confidence >= 0.999 and drop.size >= 30
    assert drop.key.startswith(f"city_conversion:{city}:down:")
    assert f"Conversion in {city} was" in drop.sentence and "over the 8 weeks before (\u2212" in drop.sentence
    assert city in drop.question
    # noise is not news: the planted city is the surest finding of its rule
    assert max(found.values(), key=lambda f: f.confidence).subject == city


def test_the_planted_mobile_drop_is_found_and_other_devices_are_quiet(db, tables):
    # 99 %: on a Monday the demo's current week holds one day of viewers
    insights = Insights(db, tables, thresholds=Thresholds(min_confidence=0.99))
    found = {f.subject: f for f in findings(insights, "device_completion")}
    assert set(found) == {"mobile"}
    assert found["mobile"].change < -0.3
    assert "Mobile completion this week" in found["mobile"].sentence


def test_orders_far_above_the_same_time_yesterday_and_last_week_are_news(db, tables, insights):
    plant_orders(db, tables, days_back=0, count=200, amount=400.0)   # above any hour's revenue in the demo data
    found = {f.subject: f for f in findings(insights, "orders_pace")}
    assert {"orders", "revenue"} <= set(found)
    assert found["orders"].change > 1 and "at the same time yesterday (+" in found["orders"].sentence
    assert found["orders"].key.endswith(":up:" + found["orders"].key.rsplit(":", 1)[1])


def test_orders_far_below_both_baselines_are_news(db, tables, insights):
    plant_orders(db, tables, days_back=1, count=200)
    plant_orders(db, tables, days_back=7, count=200)
    found = {f.subject: f for f in findings(insights, "orders_pace")}
    assert "orders" in found and found["orders"].change < -0.5
    assert "at the same time yesterday (\u2212" in found["orders"].sentence


def test_a_change_against_only_one_baseline_is_not_news(db, tables, insights):
    plant_orders(db, tables, days_back=1, count=200)        # yesterday was busy, last week was not
    assert findings(insights, "orders_pace") == []


def test_an_amenity_whose_lift_changed_sign_since_the_last_run_is_news(db, tables, insights):
    assert findings(insights, "amenity_lift") == []          # the first run only records the lifts
    with db.transaction("flip") as conn:
        flipped = conn.execute(text(f"""
            UPDATE {tables.amenity_lift} SET rate_with = rate_without - 9, confirmation_lift = -9,
                   listings_with = 2000, listings_without = 2000
            WHERE (city, property_type, amenity_name) IN (
                SELECT city, property_type, amenity_name FROM {tables.amenity_lift}
                WHERE confirmation_lift > 5 ORDER BY city, property_type, amenity_name LIMIT 1)
            RETURNING city, property_type, amenity_name""")).one()
    found = findings(insights, "amenity_lift")
    assert [f.subject for f in found] == [f"{flipped.amenity_name} for {flipped.property_type} in {flipped.city}"]
    assert "now lowers confirmations by 9.0 points" in found[0].sentence
    assert findings(insights, "amenity_lift") == []          # the new lift is the baseline now


def test_a_sign_change_on_few_listings_is_not_news(db, tables, insights):
    findings(insights, "amenity_lift")
    with db.transaction("flip") as conn:
        conn.execute(text(f"""
            UPDATE {tables.amenity_lift} SET rate_with = rate_without - 9, confirmation_lift = -9,
                   listings_with = 5, listings_without = 5
            WHERE (city, property_type, amenity_name) IN (
                SELECT city, property_type, amenity_name FROM {tables.amenity_lift}
                WHERE confirmation_lift > 5 ORDER BY city LIMIT 1)"""))
    assert findings(insights, "amenity_lift") == []


def test_thresholds_decide_what_is_news(db, tables):
    lenient = Insights(db, tables, thresholds=Thresholds(min_change=0.05, min_confidence=0.9, min_size=10))
    strict = Insights(db, tables, thresholds=Thresholds(min_change=0.9, min_confidence=0.9999999, min_size=10))
    with db.transaction("test") as conn:
        assert len(lenient.check(conn).findings) > len(strict.check(conn).findings)


def test_a_failing_rule_spoils_no_other(db, tables, insights):
    with db.transaction("drop") as conn:
        conn.execute(text(f"DROP TABLE {tables.device_funnel}"))
    result = insights.run_if_due(force=True)
    assert result is not None
    assert {f.rule for f in result.findings} >= {"city_conversion"}
    assert "device_completion" not in {f.rule for f in result.findings}


# -- storing, electing, dismissing -----------------------------------------------------------

def stored(db, tables) -> int:
    return db.scalar("count", f"SELECT count(*) FROM {tables.insights}")


def test_each_finding_is_stored_once_with_when_it_was_seen(db, tables, insights):
    first = insights.run_if_due(force=True)
    assert first.new and len(first.new) == len({f.key for f in first.findings})
    again = insights.run_if_due(force=True)
    assert again.new == [] and len(again.findings) == len(first.findings)
    assert stored(db, tables) == len(first.new)
    seen = db.rows("seen", f"SELECT first_seen, last_seen FROM {tables.insights}")
    assert all(r["last_seen"] > r["first_seen"] for r in seen)


def test_a_run_is_recorded_with_its_sql_time_per_rule(db, tables, insights):
    insights.run_if_due(force=True)
    run = insights.last_run()
    assert set(run["sql_ms"]) == {"orders_pace", "city_conversion", "device_completion", "amenity_lift"}
    assert run["findings"] >= 2


def test_one_run_per_interval_whatever_the_number_of_processes(pg, database_name, tables):
    """Eight watchers (each with its own pool, as processes have) asking at once: one runs."""
    databases = [app_role_database(pg, database_name) for _ in range(8)]
    try:
        watchers = [Insights(d, tables, every=300) for d in databases]
        results, start = [], threading.Barrier(len(watchers))

        def ask(w):
            start.wait()
            results.append(w.run_if_due())
        threads = [threading.Thread(target=ask, args=(w,)) for w in watchers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(r is not None for r in results) == 1
        assert watchers[0].run_if_due() is None               # and not again within the interval
        assert databases[0].scalar("runs", f"SELECT count(*) FROM {tables.insight_runs}") == 1
    finally:
        for d in databases:
            d.dispose()


def test_a_run_is_due_again_after_the_interval(db, tables):
    insights = Insights(db, tables, every=0.5)
    assert insights.run_if_due() is not None
    assert insights.run_if_due() is None
    time.sleep(0.6)
    assert insights.run_if_due() is not None


def test_a_dismissal_says_who_and_hides_it_from_everyone(db, tables, insights):
    new = insights.run_if_due(force=True).new
    target = new[0]
    assert insights.dismiss(target, "ana@example.com")
    assert not insights.dismiss(target, "ben@example.com")    # already dismissed: the first name stays
    assert not insights.dismiss(10**9, "ben@example.com")     # no such insight
    assert target not in [i.insight_id for i in insights.recent()]
    shown = {i.insight_id: i for i in insights.recent(include_dismissed=True)}
    assert shown[target].dismissed_by == "ana@example.com" and shown[target].dismissed_at is not None


def test_new_insights_are_announced_to_every_process(db, tables, insights):
    feed = ChangeFeed(db, CHANNEL, settle=0.05).start()
    try:
        deadline = time.monotonic() + 10
        while not feed.connected and time.monotonic() < deadline:
            time.sleep(0.02)
        before = feed.version
        insights.run_if_due(force=True)
        deadline = time.monotonic() + 5
        while feed.version == before and time.monotonic() < deadline:
            time.sleep(0.02)
        assert feed.version > before
    finally:
        feed.stop()


def test_latest_follows_the_announcements(db, tables):
    feed = ChangeFeed(db, CHANNEL)
    insights = Insights(db, tables, feed=feed)
    assert insights.latest() == []
    insights.run_if_due(force=True)
    assert insights.latest() == []          # nothing announced to this process yet: still the cached list
    feed.announce()
    latest = insights.latest()
    assert latest and latest == sorted(latest, key=lambda i: (i.first_seen, i.insight_id), reverse=True)
    insights.dismiss(latest[0].insight_id, "ana@example.com")
    feed.announce()
    assert latest[0].insight_id not in [i.insight_id for i in insights.latest()]
