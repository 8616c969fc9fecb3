"""The generated demo data: sizes, consistency between tables, determinism, staying current,
and the schema's rules (version bumps, audit, history, notifications) holding for plain SQL."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import psycopg
import pytest
from sqlalchemy import text

from data.demo import fashion, marketplace, refresh_demo_data, retail


def count(db, table: str) -> int:
    return db.scalar("count", f"SELECT count(*) FROM {table}")


def test_default_sizes(db, tables):
    assert count(db, tables.city_investment) == 80
    assert count(db, tables.city_funnel) == 80 * 365
    assert count(db, tables.property_performance) == 18_000
    assert count(db, tables.amenity_lift) == 80 * 4 * len(marketplace.AMENITIES)
    assert count(db, tables.device_funnel) == 80 * 52 * 3
    assert count(db, tables.device_diagnosis) == 80
    assert count(db, tables.orders) == 5000
    assert count(db, tables.productsdb) == 44_000
    assert count(db, tables.product_image_embeddingsdb) == 44_000
    assert count(db, tables.usersdb) == 2_000 and count(db, tables.user_style_featuresdb) == 2_000


def test_orders_have_one_to_five_items_and_some_are_from_today(db, tables):
    per_order = db.frame("items_per_order", f"SELECT order_id, count(*) AS lines, sum(quantity) AS qty, "
                                            f"sum(subtotal) AS subtotal FROM {tables.order_items} GROUP BY order_id")
    assert per_order["lines"].between(1, 5).all() and len(per_order) == 5000
    orders = db.frame("orders", f"SELECT order_id, items_subtotal, item_count, created_at FROM {tables.orders}")
    merged = orders.merge(per_order, on="order_id")
    assert np.allclose(merged["items_subtotal"], merged["subtotal"]) and (merged["item_count"] == merged["qty"]).all()
    today = datetime.now(timezone.utc).date()
    created = pd.to_datetime(orders["created_at"], utc=True)
    assert (created.dt.date == today).sum() > 0
    assert created.min() >= pd.Timestamp(datetime.now(timezone.utc) - timedelta(days=91))


def test_city_investment_sums_the_year_of_funnels(db, tables):
    funnel = db.frame("funnel", f"SELECT city, sum(viewers) AS v, sum(completers) AS c FROM {tables.city_funnel} GROUP BY city")
    investment = db.frame("investment", f"SELECT city, total_viewers, total_completers, conversion_rate FROM {tables.city_investment}")
    merged = funnel.merge(investment, on="city")
    assert (merged["v"] == merged["total_viewers"]).all() and (merged["c"] == merged["total_completers"]).all()
    assert np.allclose(merged["conversion_rate"], (merged["c"] / merged["v"] * 100).round(2))
    top = investment.sort_values("total_viewers").iloc[-1]
    assert top["city"] == "Phuket" and 13_000 < top["total_viewers"] < 17_000   # seed 000's magnitude


def test_performance_categories_follow_the_seed_rule(db, tables):
    frame = db.frame("properties", f"SELECT completion_rate, payment_fail_rate, performance_category "
                                   f"FROM {tables.property_performance}")
    expected = marketplace.performance_category(frame["completion_rate"].to_numpy(), frame["payment_fail_rate"].to_numpy())
    assert (frame["performance_category"].to_numpy() == expected).all()
    assert set(frame["performance_category"]) == {"promote", "intervention", "at_risk"}


def test_embeddings_cluster_by_article_type_and_colour(db, tables):
    row = db.rows("neighbours", f"""
        WITH q AS (SELECT image_embedding FROM {tables.product_image_embeddingsdb} WHERE product_id = 10001)
        SELECT p.article_type, p.base_color FROM {tables.product_image_embeddingsdb} e
        JOIN {tables.productsdb} p USING (product_id), q
        ORDER BY e.image_embedding <=> q.image_embedding LIMIT 6""")
    assert len({(r["article_type"], r["base_color"]) for r in row}) == 1


def test_generation_is_deterministic():
    today = date(2026, 3, 1)
    a, b = marketplace.generate(today), marketplace.generate(today)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name])
    now = datetime(2026, 3, 1, 12)
    catalog = retail.products()
    first = retail.orders_window(now - timedelta(days=3), now, first_order_id=1, existing_customers=0, catalog=catalog, seed=5)
    second = retail.orders_window(now - timedelta(days=3), now, first_order_id=1, existing_customers=0, catalog=catalog, seed=5)
    pd.testing.assert_frame_equal(first["orders"], second["orders"])
    np.testing.assert_array_equal(fashion.generate(seed=3, today=today)["product_vectors"][:50],
                                  fashion.generate(seed=3, today=today)["product_vectors"][:50])


def test_a_later_start_moves_dates_and_adds_todays_orders(db, tables):
    later = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=9)
    before_max = db.scalar("max_date", f"SELECT max(event_date) FROM {tables.city_funnel}")
    orders_before = count(db, tables.orders)
    changes = refresh_demo_data(db, tables, now=later)
    assert changes["funnel_days"] == 9 and changes["orders_added"] > 300
    assert db.scalar("max_date", f"SELECT max(event_date) FROM {tables.city_funnel}") == before_max + timedelta(days=9)
    assert count(db, tables.city_funnel) == 80 * 365
    latest_week = db.scalar("max_week", f"SELECT max(week_start) FROM {tables.device_funnel}")
    assert latest_week == marketplace.last_monday(later.date())
    assert count(db, tables.orders) == orders_before + changes["orders_added"]
    assert db.scalar("today", f"SELECT count(*) FROM {tables.orders} WHERE created_at::date = :d",
                     {"d": later.date()}) > 0
    assert refresh_demo_data(db, tables, now=later) == {"funnel_days": 0, "device_days": 0, "orders_added": 0}


def test_a_start_an_hour_later_adds_orders_from_returning_customers_only(db, tables):
    """A short gap brings a few orders, often none from a new customer: that start used to fail
    (NumPy cannot pad an empty array of ids) and the app would not come up."""
    meta_until = db.scalar("until", f"SELECT value FROM {tables.app_meta} WHERE key = 'demo_orders_until'")
    since = datetime.fromisoformat(meta_until)
    catalog = retail.products()
    windows = [retail.orders_window(since, since + timedelta(minutes=minutes), first_order_id=10**6,
                                    existing_customers=5000, catalog=catalog, seed=seed)
               for seed in range(40) for minutes in (40, 70, 100)]
    assert any(len(w["orders"]) and not len(w["customers"]) for w in windows), "the case is covered"
    orders_before = count(db, tables.orders)
    changes = refresh_demo_data(db, tables, now=since + timedelta(minutes=70))
    assert count(db, tables.orders) == orders_before + changes["orders_added"]


def test_plain_sql_changes_bump_the_version_and_are_audited(pg, db, tables, database_name):
    with psycopg.connect(pg.admin_dsn(database_name), autocommit=True) as outside:
        outside.execute("LISTEN retail_changes")
        version = outside.execute(f"SELECT version FROM {tables.orders} WHERE order_id = 42").fetchone()[0]
        outside.execute(f"UPDATE {tables.orders} SET notes = 'called the customer' WHERE order_id = 42")
        notices = list(outside.notifies(timeout=2, stop_after=1))
    assert notices and notices[0].payload == "orders:update:42"
    row = db.rows("order", f"SELECT version, modified_by FROM {tables.orders} WHERE order_id = 42")[0]
    assert row["version"] == version + 1 and row["modified_by"] == "postgres (outside the app)"
    audit = db.rows("audit", f"SELECT field, old_value, new_value FROM {tables.audit_log} WHERE order_id = 42")
    assert audit == [{"field": "notes", "old_value": "", "new_value": "called the customer"}]


def test_history_and_audit_cannot_be_deleted(db, tables):
    # The demo data depends on the hour it was made: take an order that a cancel really changes,
    # so it has audit rows (an order cancelled already would leave nothing to try deleting).
    order = db.scalar("open_order", f"SELECT min(order_id) FROM {tables.orders} WHERE status <> 'cancelled'")
    with db.transaction("cancel") as conn:
        conn.execute(text(f"UPDATE {tables.orders} SET status = 'cancelled' WHERE order_id = :o"), {"o": order})
    for table in (tables.audit_log, tables.order_status_history, tables.orders):
        for statement in (f"DELETE FROM {table} WHERE order_id = :o", f"TRUNCATE {table} CASCADE"):
            with pytest.raises(Exception, match="may not"):
                with db.transaction("delete_history") as conn:
                    conn.execute(text(statement), {"o": order})
    assert db.scalar("history", f"SELECT count(*) FROM {tables.order_status_history} WHERE order_id = :o",
                     {"o": order}) >= 2


def test_changing_items_updates_totals(db, tables):
    with db.transaction("add_item") as conn:
        conn.execute(text("SELECT set_config('app.user', 'ops@example.com', true)"))
        conn.execute(text(f"INSERT INTO {tables.order_items} (order_id, line_no, product_id, quantity, unit_price) "
                          f"VALUES (7, 9, 'P0001', 2, 10.00)"))
    row = db.rows("order", f"SELECT items_subtotal, item_count, modified_by FROM {tables.orders} WHERE order_id = 7")[0]
    items = db.rows("items", f"SELECT sum(subtotal) AS s, sum(quantity) AS q FROM {tables.order_items} WHERE order_id = 7")[0]
    assert row["items_subtotal"] == items["s"] and row["item_count"] == items["q"]
    assert row["modified_by"] == "ops@example.com"


def test_no_product_appears_twice_in_one_order(db, tables):
    assert db.scalar("dupes", f"SELECT count(*) FROM (SELECT order_id, product_id FROM {tables.order_items} "
                              "GROUP BY 1, 2 HAVING count(*) > 1) d") == 0
