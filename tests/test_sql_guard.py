"""The assistant's SQL guard: what it refuses (and says why), what it lets through, and how it runs."""
from __future__ import annotations

import pytest

from data.assistant.guard import MAX_SQL_LENGTH, ROW_LIMIT, SqlGuard
from data.errors import AppError, Category, ValidationError


@pytest.fixture
def guard(shared_db, tables):
    return SqlGuard(shared_db, tables)


REFUSED = [
    # statements that write or change the schema
    ("DELETE FROM retail360.orders", "Only SELECT"),
    ("UPDATE retail360.orders SET notes = 'x'", "Only SELECT"),
    ("INSERT INTO retail360.orders (customer_id) VALUES ('C1')", "Only SELECT"),
    ("MERGE INTO retail360.orders o USING retail360.customers c ON o.customer_id = c.customer_id "
     "WHEN MATCHED THEN DELETE", "Only SELECT"),
    ("DROP TABLE retail360.orders", "Only SELECT"),
    ("TRUNCATE retail360.audit_log", "Only SELECT"),
    ("CREATE TABLE x AS SELECT * FROM retail360.orders", "Only SELECT"),
    ("ALTER TABLE retail360.orders ADD COLUMN x int", "Only SELECT"),
    ("GRANT ALL ON retail360.orders TO public", "Only SELECT"),
    ("CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", "Only SELECT"),
    ("VACUUM retail360.orders", "Only SELECT"),
    ("SET statement_timeout = 0", "Only SELECT"),
    ("BEGIN", "Only SELECT"),
    ("EXPLAIN ANALYZE DELETE FROM retail360.orders", "Only SELECT"),
    ("VALUES (1), (2)", "Only SELECT"),
    ("CALL do_something()", "Only SELECT"),
    # copying in or out
    ("COPY retail360.orders TO '/tmp/orders.csv'", "Only SELECT"),
    ("COPY retail360.orders FROM PROGRAM 'rm -rf /'", "Only SELECT"),
    # stacked statements, including ones hidden after comments
    ("SELECT 1 FROM retail360.orders; DELETE FROM retail360.orders", "Exactly one statement"),
    ("SELECT 1 FROM retail360.orders; SELECT 2 FROM retail360.orders", "Exactly one statement"),
    ("SELECT 1 FROM retail360.orders -- harmless\n; DROP TABLE retail360.orders", "Exactly one statement"),
    ("SELECT 1 FROM retail360.orders /* comment */; UPDATE retail360.orders SET notes = ''", "Exactly one statement"),
    ("/* only a comment */", "Write a SELECT"),
    # writes inside CTEs and SELECT ... INTO
    ("WITH gone AS (DELETE FROM retail360.orders RETURNING *) SELECT * FROM gone", "contains DELETE"),
    ("WITH moved AS (UPDATE retail360.orders SET status = 'cancelled' RETURNING order_id) SELECT * FROM moved",
     "contains UPDATE"),
    ("WITH added AS (INSERT INTO retail360.customers (customer_id, name, email) VALUES ('C9', 'a', 'a@b.c') "
     "RETURNING *) SELECT * FROM added", "contains INSERT"),
    ("SELECT * INTO stolen FROM retail360.orders", "INTO creates a table"),
    ("SELECT * FROM retail360.orders FOR UPDATE", "Row locks"),
    ("SELECT * FROM retail360.orders FOR SHARE", "Row locks"),
    # side-effecting or escaping functions
    ("SELECT pg_sleep(10) FROM retail360.orders", "pg_sleep() is not allowed"),
    ("SELECT set_config('app.user', 'x', false) FROM retail360.orders", "set_config() is not allowed"),
    ("SELECT dblink('host=evil', 'select 1') FROM retail360.orders", "dblink() is not allowed"),
    ("SELECT pg_read_file('/etc/passwd') FROM retail360.orders", "pg_read_file() is not allowed"),
    ("SELECT pg_terminate_backend(1) FROM retail360.orders", "pg_terminate_backend() is not allowed"),
    ("SELECT nextval('retail360.customer_number') FROM retail360.orders", "nextval() is not allowed"),
    ("SELECT query_to_xml('delete from retail360.orders', true, true, '') FROM retail360.orders",
     "query_to_xml() is not allowed"),
    ("SELECT lo_import('/etc/passwd') FROM retail360.orders", "lo_import() is not allowed"),
    ("SELECT current_setting('app.user') FROM retail360.orders", "current_setting() is not allowed"),
    ("SELECT * FROM retail360.orders WHERE order_id = (SELECT pg_sleep(5))::text::bigint",
     "pg_sleep() is not allowed"),
    # tables outside the allow-list
    ("SELECT * FROM pg_catalog.pg_authid", "not one of the tables"),
    ("SELECT * FROM information_schema.tables", "not one of the tables"),
    ("SELECT * FROM app.app_meta", "not one of the tables"),
    ("SELECT * FROM pg_shadow", "not one of the tables"),
    ("SELECT * FROM otherdb.retail360.orders", "another database or catalog"),
    ("SELECT * FROM retail360.orders o JOIN pg_stat_activity a ON true", "not one of the tables"),
    ("SELECT * FROM generate_series(1, 10)", "Table functions are not allowed"),
    ("SELECT 1", "reads no table"),
    # malformed or oversized input
    ("SELEC * FROM retail360.orders", "could not be read"),
    ("SELECT * FROM retail360.orders WHERE", "could not be read"),
    ("SELECT * FROM retail360.orders LIMIT ALL", "LIMIT must be a whole number"),
    ("", "Write a SELECT"),
    ("   ", "Write a SELECT"),
    ("SELECT " + ", ".join(["1"] * 8000) + " FROM retail360.orders", f"the limit is {MAX_SQL_LENGTH:,}"),
]


@pytest.mark.parametrize("sql, reason", REFUSED)
def test_refused_with_a_clear_reason(guard, sql, reason):
    with pytest.raises(ValidationError) as caught:
        guard.check(sql)
    assert reason in caught.value.message
    assert caught.value.category is Category.VALIDATION
    assert "Traceback" not in caught.value.message


def test_there_are_at_least_forty_refusals():
    assert len(REFUSED) >= 40


ALLOWED = [
    "SELECT city, total_viewers FROM marketplace.city_investment ORDER BY total_viewers DESC",
    "select status, count(*) from orders group by status",
    "WITH recent AS (SELECT * FROM retail360.orders WHERE created_at > now() - interval '7 days') "
    "SELECT status, count(*) FROM recent GROUP BY status",
    "SELECT o.order_id, c.name FROM orders o JOIN customers c ON c.customer_id = o.customer_id LIMIT 5",
    "SELECT city FROM city_investment UNION SELECT city FROM property_performance",
    "SELECT article_type, count(*) FROM fashion_demo.productsdb GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "SELECT date_trunc('week', event_date) AS week, sum(viewers) FROM city_funnel GROUP BY 1",
    "SELECT * FROM retail360.orders WHERE notes LIKE '%gift%' AND status = 'pending'",
    "SELECT order_id::text || ':' || status FROM retail360.orders LIMIT 3",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_allowed_queries_run_limited_and_read_only(guard, sql):
    result = guard.run(sql)
    assert len(result.frame) <= ROW_LIMIT
    assert "LIMIT" in result.sql.upper()


def test_unqualified_tables_get_their_schema(guard):
    checked = guard.check("SELECT status FROM orders")
    assert checked.tables == ("retail360.orders",) and "retail360.orders" in checked.sql


def test_results_are_cut_at_the_row_limit_and_flagged(guard):
    big = guard.run("SELECT order_id FROM retail360.orders")
    assert len(big.frame) == ROW_LIMIT and big.truncated
    small = guard.run("SELECT order_id FROM retail360.orders LIMIT 7")
    assert len(small.frame) == 7 and not small.truncated
    exact = guard.run(f"SELECT order_id FROM retail360.orders LIMIT {ROW_LIMIT}")
    assert len(exact.frame) == ROW_LIMIT and not exact.truncated


def test_slow_queries_are_stopped_by_the_statement_timeout(shared_db, tables):
    guard = SqlGuard(shared_db, tables, timeout_ms=200)
    with pytest.raises(AppError) as caught:
        guard.run("SELECT count(*) FROM retail360.order_items a, retail360.order_items b")
    assert caught.value.category is Category.TIMEOUT


def test_the_transaction_is_read_only_even_if_the_parser_were_fooled(shared_db, tables):
    """Defence in depth: a statement that slipped past the parser still cannot write."""
    with pytest.raises(AppError) as caught:
        with shared_db.transaction("read_only_check") as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql("UPDATE retail360.orders SET notes = 'x' WHERE order_id = 1")
    assert caught.value.category is Category.PERMISSION
