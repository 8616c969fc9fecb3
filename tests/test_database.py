"""The instrumented engine: named reads, error categories, retry on a dropped connection."""
from __future__ import annotations

import psycopg
import pytest

from data.errors import AppError, Category
from data.metrics import metrics

from .conftest import app_role_database


def test_frame_returns_numeric_columns_as_floats(db, tables):
    frame = db.frame("top_cities", f"SELECT city, conversion_rate, estimated_revenue FROM {tables.city_investment} "
                                   "ORDER BY estimated_revenue DESC LIMIT 3")
    assert list(frame.columns) == ["city", "conversion_rate", "estimated_revenue"]
    assert frame["conversion_rate"].dtype == float and frame["estimated_revenue"].dtype == float
    assert frame.iloc[0]["city"] == "Phuket"


def test_every_named_query_is_timed(db, tables):
    for _ in range(3):
        db.scalar("count_orders", f"SELECT count(*) FROM {tables.orders}")
    row = next(q for q in metrics.queries() if q["query"] == "count_orders")
    assert row["calls"] >= 3 and row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"]


def test_user_values_are_bound_never_spliced(db, tables):
    hostile = "Phuket'; DROP TABLE orders; --"
    assert db.frame("city_lookup", f"SELECT * FROM {tables.city_investment} WHERE city = :city",
                    {"city": hostile}).empty
    assert db.scalar("count_orders", f"SELECT count(*) FROM {tables.orders}") > 0


@pytest.mark.parametrize("sql, category", [
    ("SELECT * FROM no_such_table", Category.CONFIGURATION),
    ("SELECT pg_sleep(2)", Category.TIMEOUT),
])
def test_failures_have_categories_and_user_messages(pg, database_name, sql, category):
    db = app_role_database(pg, database_name, statement_timeout_ms=300)
    before = metrics.errors()[category.value]
    with pytest.raises(AppError) as caught:
        db.scalar("failing", sql)
    assert caught.value.category is category
    assert "Traceback" not in caught.value.message and "SELECT" not in caught.value.message
    assert metrics.errors()[category.value] == before + 1
    db.dispose()


def test_a_write_that_breaks_a_rule_is_a_validation_error(db, tables):
    with pytest.raises(AppError) as caught:
        with db.transaction("negative_discount") as conn:
            conn.exec_driver_sql(f"UPDATE {tables.orders} SET discount = -1 WHERE order_id = 1")
    assert caught.value.category is Category.VALIDATION


def test_read_survives_a_dropped_connection(pg, db, database_name):
    assert db.scalar("select_one", "SELECT 1") == 1          # one pooled connection now exists
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (database_name,))
    assert db.scalar("select_one", "SELECT 1") == 1          # pre-ping or the retry opens a new one
    assert db.connections_opened >= 2


def test_pool_status_reports_sizes(db):
    db.scalar("select_one", "SELECT 1")
    status = db.pool_status()
    assert status["size"] == 5 and status["max_overflow"] == 15 and status["checked_out"] == 0
    with db.engine.connect():
        assert db.pool_status()["checked_out"] == 1
