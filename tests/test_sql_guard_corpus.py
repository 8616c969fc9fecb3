"""Hostile SQL through the real chat path (`/sql …` asked of the assistant), each with the outcome
it must have; then the same kinds of query with the parser out of the way, to show that the
database alone (the reader role, the read-only transaction, the discarded connection) holds.

Outcomes: REFUSED (the parser said why, nothing ran), FAILED (it ran as the reader and PostgreSQL
said no: the words are PostgreSQL's), ANSWERED (it ran within the limits: what it shows is
checked)."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from data.assistant import Answer, Assistant, Conversation, Failure
from data.assistant.guard import ROW_LIMIT, GuardedQuery, SqlGuard

from .conftest import APP_ROLE, app_role_database, default_tables

REFUSED, FAILED, ANSWERED = "refused", "failed", "answered"
NOT_A_TABLE = "not one of the tables the assistant may read"
NOT_A_FUNCTION = "is not allowed in assistant queries"
ONLY_SELECT = "Only SELECT"

CORPUS = [
    # -- the catalog and the app's own tables, however they are named -------------------------
    *[(f"SELECT * FROM {name}", REFUSED, NOT_A_TABLE) for name in (
        "pg_authid", "pg_catalog.pg_authid", '"pg_authid"', "PG_AUTHID", "pg_shadow", "pg_roles", "pg_user",
        "pg_stat_activity", "pg_catalog.pg_stat_activity", "pg_settings", "pg_file_settings", "pg_hba_file_rules",
        "pg_largeobject", "pg_statistic", "pg_stats", "pg_proc", "pg_class", "pg_namespace", "pg_database",
        "pg_user_mappings", "pg_stat_statements", "information_schema.tables", "information_schema.columns",
        "information_schema.role_table_grants", "app.assistant_log", "app.app_meta", "app.assistant_feedback",
        '"app"."assistant_log"', "APP.ASSISTANT_LOG", "public.pg_authid", "assistant_log")],
    ("SELECT o.order_id, a.rolpassword FROM retail360.orders o JOIN pg_authid a ON true", REFUSED, NOT_A_TABLE),
    ("SELECT * FROM retail360.orders WHERE EXISTS (SELECT 1 FROM pg_authid)", REFUSED, NOT_A_TABLE),
    ("SELECT (SELECT rolpassword FROM pg_authid LIMIT 1) FROM retail360.orders", REFUSED, NOT_A_TABLE),
    ("SELECT status FROM retail360.orders UNION SELECT rolname FROM pg_authid", REFUSED, NOT_A_TABLE),
    ("SELECT status FROM retail360.orders UNION ALL SELECT question FROM app.assistant_log", REFUSED, NOT_A_TABLE),
    ("SELECT status FROM retail360.orders INTERSECT SELECT usename FROM pg_user", REFUSED, NOT_A_TABLE),
    ("SELECT * FROM retail360.orders o, LATERAL (SELECT query FROM pg_stat_activity) q", REFUSED, NOT_A_TABLE),
    ("SELECT count(*) FROM retail360.orders GROUP BY status HAVING count(*) > (SELECT count(*) FROM pg_roles)",
     REFUSED, NOT_A_TABLE),
    ("SELECT * FROM retail360.orders WHERE notes IN (SELECT setting FROM pg_settings)", REFUSED, NOT_A_TABLE),
    ("SELECT * FROM otherdb.retail360.orders", REFUSED, "another database or catalog"),
    ("SELECT * FROM retail360.no_such_table", REFUSED, NOT_A_TABLE),
    # -- a CTE named like a catalog table hides nothing outside its own scope ------------------
    ("SELECT * FROM (WITH pg_authid AS (SELECT 1 AS x) SELECT * FROM pg_authid) a, pg_authid", REFUSED, NOT_A_TABLE),
    ("SELECT (WITH pg_shadow AS (SELECT 1) SELECT 1), * FROM pg_shadow", REFUSED, NOT_A_TABLE),
    ("WITH x AS (SELECT 1) SELECT * FROM retail360.orders, (WITH pg_roles AS (SELECT 2) SELECT 1) s, pg_roles",
     REFUSED, NOT_A_TABLE),
    ("SELECT * FROM retail360.orders WHERE order_id IN (WITH assistant_log AS (SELECT 1) SELECT 1) "
     "AND notes IN (SELECT question FROM assistant_log)", REFUSED, NOT_A_TABLE),
    ("WITH orders AS (SELECT * FROM pg_authid) SELECT * FROM orders", REFUSED, NOT_A_TABLE),
    ("WITH a AS (SELECT * FROM pg_shadow) SELECT * FROM retail360.orders", REFUSED, NOT_A_TABLE),
    ("WITH x AS (SELECT * FROM x) SELECT * FROM x", REFUSED, NOT_A_TABLE),
    ('WITH "PG_AUTHID" AS (SELECT 1) SELECT * FROM pg_authid', REFUSED, NOT_A_TABLE),
    ("WITH a AS (SELECT 1) SELECT * FROM a UNION SELECT 1 FROM pg_user", REFUSED, NOT_A_TABLE),
    ("WITH RECURSIVE pg_authid AS (SELECT 1 UNION SELECT 1 FROM pg_authid) SELECT * FROM pg_catalog.pg_authid",
     REFUSED, NOT_A_TABLE),
    ("SELECT * FROM retail360.orders o WHERE EXISTS (WITH pg_roles AS (SELECT 1) SELECT 1 FROM pg_roles) "
     "AND EXISTS (SELECT 1 FROM pg_roles r)", REFUSED, NOT_A_TABLE),
    # -- functions that run SQL text, read files or settings, wait, write or reach outside -----
    *[(f"SELECT {call} FROM retail360.orders LIMIT 1", REFUSED, NOT_A_FUNCTION) for call in (
        "query_to_xml('select * from pg_authid', true, true, '')",
        "query_to_xml_and_xmlschema('select 1', true, true, '')", "query_to_xmlschema('select 1', true, true, '')",
        "cursor_to_xml('c', 1, true, true, '')", "table_to_xml('pg_authid', true, true, '')",
        "schema_to_xml('pg_catalog', true, true, '')", "database_to_xml(true, true, '')",
        "ts_stat('select 1')", "ts_rewrite('a'::tsquery, 'select 1')", "xpath('/a', notes::xml)",
        "dblink('host=evil', 'select 1')", "dblink_exec('drop table x')", "lo_import('/etc/passwd')",
        "lo_get(1)", "pg_read_file('/etc/passwd')", "pg_read_binary_file('/etc/passwd')", "pg_ls_dir('.')",
        "pg_stat_file('postgresql.conf')", "current_setting('data_directory')", "set_config('a.b', 'c', false)",
        "pg_sleep(5)", "pg_sleep_for('5 s')", "pg_advisory_lock(1)", "txid_current()", "nextval('x')",
        "setval('x', 1)", "currval('x')", "lastval()", "pg_terminate_backend(1)", "pg_cancel_backend(1)",
        "pg_reload_conf()", "pg_rotate_logfile()", "version()", "current_user", "session_user",
        "current_database()", "inet_server_addr()", "has_table_privilege('pg_authid', 'select')",
        "pg_get_userbyid(10)", "pg_get_functiondef(1)", "to_regclass('pg_authid')", "repeat('x', 100000000)",
        "lpad('x', 100000000)", "rpad('x', 100000000)", "format('%s', notes)", "row_to_json(orders)",
        "json_agg(notes)", "jsonb_build_object('a', notes)", "generate_series(1, 100000000)",
        "unnest(array[1, 2])", "regexp_split_to_table(notes, ' ')", "string_to_table(notes, ' ')",
        '"pg_sleep"(1)', "PG_SLEEP(1)",
        "md5(notes)", "encode(notes::bytea, 'hex')", "convert_from('x', 'UTF8')", "pg_typeof(notes)",
        "pg_backend_pid()", "pg_postmaster_start_time()", "pg_current_wal_lsn()", "pg_relation_size('orders')",
        "pg_size_pretty(1)", "obj_description(1)", "col_description(1, 1)", "pg_get_viewdef('x')",
        "pg_notify('retail_changes', 'x')")],
    ("SELECT * FROM retail360.orders WHERE order_id = (SELECT pg_sleep(5))::text::bigint", REFUSED, NOT_A_FUNCTION),
    ("SELECT * FROM generate_series(1, 10)", REFUSED, "Table functions are not allowed"),
    ("SELECT * FROM pg_ls_dir('.')", REFUSED, "Table functions are not allowed"),
    ("SELECT * FROM retail360.orders, unnest(array[1, 2]) u", REFUSED, "not allowed"),
    ("SELECT * FROM retail360.orders, LATERAL generate_series(1, order_id) g", REFUSED, "not allowed"),
    ("SELECT pg_catalog.lower(notes) FROM retail360.orders", REFUSED, "Schema-qualified functions"),
    ("SELECT public.lower(notes) FROM retail360.orders", REFUSED, "Schema-qualified functions"),
    ("SELECT * FROM ROWS FROM (generate_series(1, 3)) g", REFUSED, ""),
    ("SELECT * FROM (VALUES (1)) v(x), pg_roles", REFUSED, NOT_A_TABLE),
    # -- casts that look things up in the catalog -------------------------------------------------
    *[(f"SELECT {cast} FROM retail360.orders LIMIT 1", REFUSED, "Casting to") for cast in (
        "'pg_authid'::regclass", "'pg_authid'::regclass::oid", "cast('pg_sleep' AS regproc)", "'x'::regrole",
        "notes::xml", "notes::json", "notes::jsonb", "1::oid", "'public'::regnamespace", "notes::tsvector")],
    # -- writes, schema changes, sessions and transactions -----------------------------------------
    *[(statement, REFUSED, ONLY_SELECT) for statement in (
        "DELETE FROM retail360.orders", "UPDATE retail360.orders SET notes = 'x'",
        "INSERT INTO retail360.orders (customer_id) VALUES ('C1')", "DROP TABLE retail360.orders",
        "TRUNCATE retail360.audit_log", "CREATE TABLE x AS SELECT * FROM retail360.orders",
        "ALTER TABLE retail360.orders ADD COLUMN x int", "GRANT ALL ON retail360.orders TO public",
        "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql", "VACUUM retail360.orders",
        "SET statement_timeout = 0", "SET ROLE postgres", "RESET ROLE", "SET SESSION AUTHORIZATION postgres",
        "BEGIN", "COMMIT", "EXPLAIN ANALYZE DELETE FROM retail360.orders", "VALUES (1), (2)",
        "CALL do_something()", "COPY retail360.orders TO '/tmp/orders.csv'", "COPY retail360.orders FROM PROGRAM 'id'",
        "DO $$ BEGIN PERFORM pg_sleep(1); END $$", "LISTEN retail_changes", "NOTIFY retail_changes",
        "PREPARE p AS SELECT 1", "EXECUTE p", "DISCARD ALL", "SHOW data_directory",
        "LOCK TABLE retail360.orders", "REFRESH MATERIALIZED VIEW x",
        "ALTER ROLE assistant_reader SUPERUSER", "CREATE ROLE evil SUPERUSER")],
    ("TABLE pg_authid", REFUSED, NOT_A_TABLE),
    ("SECURITY LABEL ON TABLE x IS 'y'", REFUSED, "could not be read"),
    ("WITH gone AS (DELETE FROM retail360.orders RETURNING *) SELECT * FROM gone", REFUSED, "contains DELETE"),
    ("WITH moved AS (UPDATE retail360.orders SET status = 'cancelled' RETURNING order_id) SELECT * FROM moved",
     REFUSED, "contains UPDATE"),
    ("SELECT * INTO stolen FROM retail360.orders", REFUSED, "INTO creates a table"),
    ("SELECT * FROM retail360.orders FOR UPDATE", REFUSED, "Row locks"),
    ("SELECT * FROM retail360.orders FOR SHARE", REFUSED, "Row locks"),
    ("SELECT 1 FROM retail360.orders; DELETE FROM retail360.orders", REFUSED, "Exactly one statement"),
    ("SELECT 1 FROM retail360.orders -- hi\n; DROP TABLE retail360.orders", REFUSED, "Exactly one statement"),
    ("SELECT 1 FROM retail360.orders /* x */; SELECT * FROM pg_authid", REFUSED, "Exactly one statement"),
    ("SELECT 1 FROM retail360.orders\x00; DROP TABLE x", REFUSED, "NUL"),
    ("SELECT * FROM retail360.orders LIMIT ALL", REFUSED, "LIMIT must be a whole number"),
    ("SELEC * FROM retail360.orders", REFUSED, "could not be read"),
    ("SELECT 1", REFUSED, "reads no table"),
    # -- mistakes in the person's own query: PostgreSQL's words, not "a table is missing" ------------
    ("SELECT u FROM retail360.orders", FAILED, 'The query failed: column "u" does not exist.'),
    ("SELECT o.nope FROM retail360.orders o", FAILED, 'column o.nope does not exist'),
    ("SELECT order_id / 0 FROM retail360.orders", FAILED, "The query failed: division by zero."),
    ("SELECT 'x'::int FROM retail360.orders", FAILED, 'invalid input syntax for type integer'),
    ("SELECT upper(order_id) FROM retail360.orders", FAILED, "The query failed: function upper(bigint) does not exist."),
    ("SELECT status FROM retail360.orders GROUP BY 1 HAVING order_id > 1", FAILED, "The query failed:"),
    # -- as much as it can: the row limit, the value and result caps, the time limit ----------------
    ("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t) SELECT n FROM t, retail360.orders "
     "WHERE false OR true", ANSWERED, "rows"),
    ("SELECT count(*) FROM retail360.order_items a, retail360.order_items b, retail360.order_items c",
     FAILED, "The query took longer than 1.5 s"),
    ("SELECT string_agg(o.shipping_address, ' ') FROM retail360.orders o, "
     "(SELECT 1 FROM retail360.products LIMIT 30) x", ANSWERED, "left empty"),
]


@pytest.fixture(scope="module")
def corpus_db(pg, demo_template):
    name = f"corpus_{uuid.uuid4().hex[:8]}"
    pg.create_database(name, template=demo_template, owner=APP_ROLE)
    database = app_role_database(pg, name)
    yield database
    database.dispose()


@pytest.fixture(scope="module")
def assistant(corpus_db):
    tables = default_tables()
    return Assistant(corpus_db, tables, SqlGuard(corpus_db, tables, timeout_ms=1500), missing=["GENIE_SPACE_ID"])


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 150


@pytest.mark.parametrize("sql, outcome, says", CORPUS, ids=[f"{i:03d}" for i in range(len(CORPUS))])
def test_hostile_sql_through_the_chat(assistant, sql, outcome, says):
    result = assistant.ask("attacker@example.com", f"/sql {sql}", Conversation(), on_status=lambda _: None)
    if outcome == ANSWERED:
        assert isinstance(result, Answer), result
        shown = f"{result.row_count} rows {result.size_note}"
        assert says in shown, shown
        assert len(result.frame) <= ROW_LIMIT
        return
    assert isinstance(result, Failure), f"ran: {sql}"
    assert says in result.message, result.message
    assert result.outcome == ("refused" if outcome == REFUSED else result.outcome)
    assert "Traceback" not in result.message and "psycopg" not in result.message


# -- the database alone holds the line --------------------------------------------------------

class TrustingGuard(SqlGuard):
    """A guard whose parser lets everything through (as a gap in it would): only the database's
    role, transaction and limits stand in the way."""

    def check(self, sql: str) -> GuardedQuery:
        return GuardedQuery(sql, ())


@pytest.fixture(scope="module")
def trusting(corpus_db):
    return TrustingGuard(corpus_db, default_tables(), timeout_ms=1500)


@pytest.mark.parametrize("sql, says", [
    ("SELECT rolname, rolpassword FROM pg_authid", "permission denied for table pg_authid"),
    ("SELECT * FROM pg_shadow", "permission denied for view pg_shadow"),
    ("SELECT * FROM app.assistant_log", "permission denied for schema app"),
    ("SELECT * FROM app.app_meta", "permission denied for schema app"),
    ("SELECT query_to_xml('select * from app.assistant_log', true, true, '')", "permission denied for schema app"),
    ("SELECT current_setting('data_directory')", "permission denied"),
    ("SELECT pg_read_file('postgresql.conf')", "permission denied"),
    ("SELECT pg_ls_dir('.')", "permission denied"),
    ("SELECT * FROM pg_hba_file_rules", "permission denied"),
    ("SELECT lo_import('/etc/passwd')", "permission denied"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "permission denied"),
])
def test_the_reader_role_cannot_read_what_it_was_not_given(trusting, sql, says):
    with pytest.raises(Exception) as caught:
        trusting.run(sql)
    assert says in str(caught.value)


@pytest.mark.parametrize("sql", [
    "SELECT nextval('retail360.customer_number')",
    "UPDATE retail360.orders SET notes = 'written' RETURNING order_id",
    "WITH w AS (UPDATE retail360.orders SET notes = 'written' RETURNING order_id) SELECT * FROM w",
    "SELECT set_config('app.user', 'x', false), lo_create(0)",
])
def test_the_reader_cannot_write_even_through_a_function(trusting, corpus_db, sql):
    before = corpus_db.scalar("seq", "SELECT last_value FROM retail360.customer_number")
    with pytest.raises(Exception):
        trusting.run(sql)
    assert corpus_db.scalar("written", "SELECT count(*) FROM retail360.orders WHERE notes = 'written'") == 0
    assert corpus_db.scalar("seq", "SELECT last_value FROM retail360.customer_number") == before


def test_other_sessions_sql_is_hidden_from_the_reader(trusting, corpus_db, pg):
    with psycopg.connect(pg.admin_dsn(corpus_db.engine.url.database), autocommit=True) as other:
        other.execute("SELECT 'a secret query' /* another session */")
        result = trusting.run("SELECT query FROM pg_stat_activity WHERE query IS NOT NULL")
    assert not any("a secret query" in str(q) for q in result.frame["query"])


def test_what_a_query_sets_does_not_reach_the_next_checkout(trusting, corpus_db):
    result = trusting.run("SELECT set_config('statement_timeout', '0', false), set_config('search_path', 'app', false)")
    assert len(result.frame) == 1
    assert corpus_db.scalar("after", "SHOW statement_timeout") != "0"
    assert corpus_db.scalar("after", "SHOW search_path") != "app"
    assert corpus_db.scalar("after", "SELECT current_user") == APP_ROLE


def test_no_guarded_query_runs_without_the_reader_role(corpus_db):
    guard = SqlGuard(corpus_db, default_tables(), reader="no_such_reader_role")
    with pytest.raises(Exception) as caught:
        guard.run("SELECT status FROM retail360.orders")
    assert "read-only database role 'no_such_reader_role' is missing" in str(caught.value)


def test_big_values_and_big_results_are_capped_in_bytes(corpus_db):
    guard = SqlGuard(corpus_db, default_tables(), value_bytes=1_000, result_bytes=10_000)
    wide = guard.run("SELECT order_id, notes || string_agg(shipping_address, ',') OVER () AS blob "
                     "FROM retail360.orders ORDER BY order_id")
    assert wide.frame["blob"].isna().all() and "left empty" in wide.note
    assert wide.frame["order_id"].notna().all(), "the small values of the same rows are kept"
    many = guard.run("SELECT order_id, shipping_address, notes FROM retail360.orders")
    assert "cut after" in many.note and 0 < len(many.frame) < ROW_LIMIT


def test_the_app_itself_is_not_a_superuser_and_is_allowed_to_become_the_reader(corpus_db):
    assert corpus_db.scalar("super", "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is False
    assert corpus_db.scalar("member", "SELECT pg_has_role(current_user, 'assistant_reader', 'SET')") is True

