"""The setup commands an engineer runs once against a real workspace, here the fake workspace
and the embedded PostgreSQL: what each prints, what it changes, and that a failure changes nothing."""
from __future__ import annotations

import json
import uuid

import psycopg
import pytest
from psycopg import sql

from data.setup import GENIE_QUESTIONS, main

from .fake_workspace import ENDPOINT, SPACE_ID, WAREHOUSE_ID, FakeWorkspace
from .helpers import APP_ROLE, APP_ROLE_PASSWORD


def run(*argv) -> tuple[int, str]:
    lines: list[str] = []
    code = main(list(argv), write=lines.append)
    return code, "\n".join(lines)


@pytest.fixture
def empty_database(pg, clean_env):
    """A new, empty database (pgvector installed, as a DBA does on Lakebase), and the app pointed at it."""
    name = f"setup_{uuid.uuid4().hex[:10]}"
    pg.create_database(name, owner=APP_ROLE)
    with psycopg.connect(pg.admin_dsn(name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    for key, value in dict(PGHOST="127.0.0.1", PGPORT=str(pg.port), PGUSER=APP_ROLE, PGPASSWORD=APP_ROLE_PASSWORD,
                           PGDATABASE=name, PGSSLMODE="disable").items():
        clean_env.setenv(key, value)
    yield name
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def reader_role(pg, empty_database):
    """The app's service principal as a Postgres role (its grants are dropped with it)."""
    role = f"app_sp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(pg.admin_dsn(empty_database), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def query(pg, database, statement, *args):
    with psycopg.connect(pg.admin_dsn(database)) as conn:
        return conn.execute(statement, args).fetchall()


def test_schema_creates_the_app_tables_and_grants_the_app_role(pg, empty_database, reader_role):
    code, printed = run("schema", "--grant-to", reader_role)
    assert code == 0 and "done  schema retail360: customers, products, orders" in printed
    assert f"granted {reader_role}" in printed
    privileges = query(pg, empty_database, "SELECT has_table_privilege(%s, 'retail360.orders', 'UPDATE'), "
                       "has_table_privilege(%s, 'retail360.orders', 'DELETE'), "
                       "has_table_privilege(%s, 'app.assistant_log', 'INSERT')", reader_role, reader_role, reader_role)
    assert privileges == [(True, False, True)]
    assert "done  assistant reader role assistant_reader: SELECT on 6 tables" in printed
    assert "not here yet, so not granted:" in printed and "marketplace.amenity_city_top" in printed
    reader = query(pg, empty_database, "SELECT pg_has_role(%s, 'assistant_reader', 'SET'), "
                   "has_table_privilege('assistant_reader', 'retail360.orders', 'SELECT'), "
                   "has_table_privilege('assistant_reader', 'app.assistant_log', 'SELECT'), "
                   "has_table_privilege('assistant_reader', 'retail360.orders', 'UPDATE')", reader_role)
    assert reader == [(True, True, False, False)], "the app may become the reader, which reads only its tables"
    assert run("schema", "--grant-to", reader_role)[0] == 0, "running it again is harmless"


def test_schema_run_by_a_role_that_may_not_manage_the_reader_says_what_it_needs(pg, empty_database, reader_role,
                                                                             clean_env):
    weak = f"weak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'weak-password'").format(sql.Identifier(weak)))
    with psycopg.connect(pg.admin_dsn(empty_database), autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(empty_database),
                                                                        sql.Identifier(weak)))
    clean_env.setenv("PGUSER", weak)
    clean_env.setenv("PGPASSWORD", "weak-password")
    code, printed = run("schema", "--grant-to", reader_role)
    assert code == 1 and "FAIL  assistant reader role assistant_reader" in printed
    assert "CREATEROLE" in printed and "every assistant query is refused" in printed
    with psycopg.connect(pg.admin_dsn(empty_database), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(weak)))
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(weak)))


def test_schema_with_an_unknown_role_changes_nothing(pg, empty_database):
    code, printed = run("schema", "--grant-to", "no_such_role")
    assert code == 1 and "FAIL  role no_such_role does not exist" in printed and "fix:" in printed
    assert query(pg, empty_database, "SELECT count(*) FROM information_schema.schemata "
                                     "WHERE schema_name = 'retail360'") == [(0,)]


def test_demo_data_loads_once_and_replaces_only_when_told(pg, empty_database):
    code, printed = run("demo-data", "--quiet", "--scale", "0.1")
    assert code == 0 and "loaded demo data into retail360" in printed
    orders = query(pg, empty_database, "SELECT count(*) FROM retail360.orders")[0][0]
    assert orders > 0 and query(pg, empty_database, "SELECT count(*) FROM fashion_demo.productsdb") == [(44_000,)]
    code, printed = run("demo-data", "--quiet")
    assert code == 1 and "already hold rows, so nothing was loaded" in printed and "--replace" in printed
    assert query(pg, empty_database, "SELECT count(*) FROM retail360.orders")[0][0] == orders
    code, printed = run("demo-data", "--quiet", "--replace", "--scale", "0.2")
    assert code == 0 and "dropped and recreated" in printed
    assert query(pg, empty_database, "SELECT count(*) FROM retail360.orders")[0][0] > orders


def test_indexes_are_printed_and_applied(pg, empty_database):
    code, printed = run("indexes")
    assert code == 0 and "CREATE INDEX IF NOT EXISTS productsdb_gender ON \"fashion_demo\".productsdb (gender);" in printed
    assert "USING hnsw (image_embedding vector_cosine_ops) WITH (m = 16, ef_construction = 128);" in printed
    run("demo-data", "--quiet", "--scale", "0.05")
    code, printed = run("indexes", "--apply")
    assert code == 0 and printed.count("done  CREATE") >= 6
    assert query(pg, empty_database, "SELECT count(*) FROM pg_indexes WHERE indexname = "
                                     "'product_image_embeddings_hnsw'") == [(1,)]


@pytest.fixture
def workspace(clean_env):
    with FakeWorkspace() as ws:
        for key, value in ws.env().items():
            clean_env.setenv(key, value)
        yield ws


def test_genie_space_is_created_then_updated(empty_database, workspace):
    code, printed = run("genie-space", "--warehouse", WAREHOUSE_ID, "--catalog", "ecom")
    created = [k for k in workspace.spaces if k != SPACE_ID]
    assert code == 0 and len(created) == 1 and f"set GENIE_SPACE_ID={created[0]}" in printed
    space = json.loads(workspace.spaces[created[0]]["serialized_space"])
    tables = [t["identifier"] for t in space["data_sources"]["tables"]]
    assert "ecom.retail360.orders" in tables and "ecom.marketplace.city_investment" in tables
    assert [q["question"][0] for q in space["config"]["sample_questions"]] == list(GENIE_QUESTIONS)
    code, printed = run("genie-space", "--warehouse", WAREHOUSE_ID, "--catalog", "ecom")
    assert code == 0 and f"updated Genie space {created[0]}" in printed and len(workspace.spaces) == 2


def test_genie_space_takes_the_warehouse_from_the_settings(empty_database, workspace, clean_env):
    assert run("genie-space", "--catalog", "ecom")[1].count("pass --warehouse <id> or set DATABRICKS_WAREHOUSE_ID") == 1
    clean_env.setenv("DATABRICKS_WAREHOUSE_ID", WAREHOUSE_ID)
    code, printed = run("genie-space", "--catalog", "ecom")
    assert code == 0 and "created Genie space" in printed


def test_genie_space_with_a_bad_warehouse_changes_nothing(empty_database, workspace):
    code, printed = run("genie-space", "--warehouse", "nope", "--catalog", "ecom")
    assert code == 1 and "FAIL  Genie space not saved" in printed and "--warehouse" in printed
    assert list(workspace.spaces) == [SPACE_ID]


def test_check_reports_each_part_with_a_fix(pg, empty_database, workspace, clean_env):
    clean_env.setenv("GENIE_SPACE_ID", SPACE_ID)
    code, printed = run("check")
    assert code == 1
    assert "ok    database: PostgreSQL 18" in printed and "ok    workspace: signed in as" in printed
    assert "FAIL  app tables missing: retail360.customers" in printed and "fix: python -m data.setup schema" in printed
    assert "ok    genie space: Demo space" in printed and f"ok    serving endpoint: {ENDPOINT} (READY)" in printed
    run("demo-data", "--quiet", "--scale", "0.05")
    clean_env.setenv("SERVING_ENDPOINT", "no-such-endpoint")
    clean_env.setenv("GENIE_SPACE_ID", "no-such-space")
    code, printed = run("check")
    assert "ok    app tables: present" in printed and "ok    synced tables: present" in printed
    assert "FAIL  genie space no-such-space" in printed and "FAIL  serving endpoint no-such-endpoint" in printed
    assert code == 1


def test_check_on_lakebase_mints_a_token(pg, database_name, clean_env):
    role = f"sp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'unset'").format(sql.Identifier(role)))
    try:
        with FakeWorkspace(admin_dsn=pg.admin_dsn(), role=role, user_name=role) as ws:
            for key, value in {**ws.env(), "LAKEBASE_INSTANCE_NAME": ws.instance_name, "PGHOST": "127.0.0.1",
                               "PGPORT": str(pg.port), "PGDATABASE": database_name, "PGSSLMODE": "disable"}.items():
                clean_env.setenv(key, value)
            code, printed = run("check")
            assert f"ok    lakebase: {ws.instance_name} reachable at 127.0.0.1, token minted for {role}" in printed
            assert ws.tokens_issued and ws.tokens_issued[-1] not in printed, "the token itself is never printed"
    finally:
        with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_bad_settings_are_reported_and_nothing_runs(clean_env):
    clean_env.setenv("PGHOST", "db.internal")           # a host with no user or password
    code, printed = run("check")
    assert code == 2 and "FAIL  settings:" in printed


def test_genie_space_takes_the_verified_questions_as_example_sql(pg, empty_database, workspace):
    run("schema")
    with psycopg.connect(pg.admin_dsn(empty_database), autocommit=True) as conn:
        conn.execute("INSERT INTO app.verified_questions (question, sql_text, row_count, checksum, promoted_by) "
                     "VALUES ('Top cities?', 'SELECT city FROM marketplace.city_investment LIMIT 5', 5, 'x', 'ed')")
    code, printed = run("genie-space", "--warehouse", WAREHOUSE_ID, "--catalog", "ecom")
    assert code == 0 and "1 verified question goes in as example SQL" in printed
    created = [k for k in workspace.spaces if k != SPACE_ID][0]
    examples = json.loads(workspace.spaces[created]["serialized_space"])["instructions"]["example_question_sqls"]
    assert [(e["question"], e["sql"]) for e in examples] == [
        (["Top cities?"], ["SELECT city FROM marketplace.city_investment LIMIT 5"])]
