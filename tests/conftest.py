"""Shared fixtures: one throwaway embedded PostgreSQL per test session, a demo-data template
database cloned for each test that writes, and a helper that runs `serve.py` for real.

The app role `app_sp` plays the Lakebase service principal: it connects over TCP with a
password, which the fake workspace rotates when it issues tokens.
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import URL

from data.credentials import NoPassword
from data.database import Database
from data.embedded import SUPERUSER, EmbeddedPostgres
from data.roles import DEFAULT_READER, create_reader_sql
from data.settings import load_settings
from data.tables import Tables

from .helpers import APP_ROLE, APP_ROLE_PASSWORD

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = "demo_template"


@pytest.fixture(scope="session")
def pg(tmp_path_factory) -> EmbeddedPostgres:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", durable=False).start()
    with psycopg.connect(server.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(APP_ROLE), sql.Literal(APP_ROLE_PASSWORD)))
        # As on Lakebase after `data.setup schema`: the assistant's reader, which the app may become
        # (and, as the role that runs the setup commands here, grant to others).
        for statement in create_reader_sql(DEFAULT_READER, [APP_ROLE]):
            conn.execute(statement)
        conn.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(DEFAULT_READER),
                                                                       sql.Identifier(APP_ROLE)))
        conn.execute(sql.SQL("GRANT SET ON PARAMETER temp_file_limit TO {}").format(sql.Identifier(APP_ROLE)))
    yield server
    server.destroy()


def superuser_database(pg: EmbeddedPostgres, name: str, **options) -> Database:
    url = URL.create("postgresql+psycopg", username=SUPERUSER, port=pg.port, database=name,
                     query={"host": str(pg.socket_dir)})
    return Database(url, NoPassword(), **options)


def default_tables() -> Tables:
    return Tables.from_settings(load_settings({}))


@pytest.fixture(scope="session")
def demo_template(pg) -> str:
    """A database with the full schema and the default demo data, owned by the app role."""
    from data.backend import schema_fingerprint
    from data.demo import load_demo_data
    from data.schema import ALL_DOMAINS, create_schema

    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(TEMPLATE), sql.Identifier(APP_ROLE)))
    with psycopg.connect(pg.admin_dsn(TEMPLATE), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    db = app_role_database(pg, TEMPLATE)
    tables = default_tables()
    create_schema(db, tables, ALL_DOMAINS)
    load_demo_data(db, tables, progress=False, meta={"schema_fingerprint": schema_fingerprint(tables)})
    db.dispose()
    return TEMPLATE


def app_role_database(pg: EmbeddedPostgres, name: str, **options) -> Database:
    from data.credentials import StaticPassword
    url = URL.create("postgresql+psycopg", username=APP_ROLE, host="127.0.0.1", port=pg.port, database=name)
    return Database(url, StaticPassword(APP_ROLE_PASSWORD), **options)


@pytest.fixture
def database_name(pg, demo_template) -> str:
    """A fresh copy of the demo database for one test (dropped afterwards)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg.create_database(name, template=demo_template, owner=APP_ROLE)
    yield name
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def shared_db(pg, demo_template) -> Database:
    """One copy of the demo database for tests that only read (never write through it)."""
    name = "shared_readonly"
    pg.create_database(name, template=demo_template, owner=APP_ROLE)
    database = app_role_database(pg, name)
    yield database
    database.dispose()


@pytest.fixture
def db(pg, database_name) -> Database:
    database = app_role_database(pg, database_name)
    yield database
    database.dispose()


@pytest.fixture
def tables() -> Tables:
    return default_tables()


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No Databricks or PG variables from the machine leak into a test."""
    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "PG", "LAKEBASE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    return monkeypatch


# -- the assistant's Genie and Claude ----------------------------------------------------

@pytest.fixture
def assistant_workspace(pg, database_name, clean_env):
    """The fake workspace's Genie and serving endpoint, answering from this test's database."""
    from .fake_workspace import FakeWorkspace
    with FakeWorkspace(query_dsn=pg.admin_dsn(database_name)) as ws:
        ws.stream_pause = 0.0
        for key, value in ws.env().items():
            clean_env.setenv(key, value)
        yield ws


def make_assistant(db, tables, *, genie=True, claude=True, timeout=10.0, per_minute=50):
    """An assistant on the fake workspace (through the real SDK), polling fast."""
    from data.assistant import Assistant
    from data.assistant.claude import Claude
    from data.assistant.budget import RateLimiter
    from data.assistant.genie import Genie
    from data.assistant.guard import SqlGuard
    from data.workspace import workspace_client

    from .fake_workspace import ENDPOINT, SPACE_ID
    w = workspace_client()
    return Assistant(db, tables, SqlGuard(db, tables),
                     genie=Genie(w, SPACE_ID, RateLimiter(per_minute), first_poll=0.02, max_poll=0.05) if genie else None,
                     claude=Claude(w, ENDPOINT) if claude else None, timeout=timeout,
                     missing=[] if genie else ["GENIE_SPACE_ID"])


# -- browser ------------------------------------------------------------------------------

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "tests" / "artifacts"


def chromium_path() -> str | None:
    explicit = os.environ.get("CHROMIUM_PATH")
    if explicit:
        return explicit
    return next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI=true (apt-get install chromium)")
        pytest.skip("no Chromium found (apt-get install chromium, or set CHROMIUM_PATH)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# A Bokeh race, not ours: a page resize while a figure's view is still being built (a chart arriving
# in a chat message) measures the figure before it has a layout. The figure lays itself out once
# built (the tests wait for its title), so this one error is not counted.
BOKEH_LAYOUT_RACE = re.compile(r"Cannot read properties of undefined \(reading '(top|bottom|left|right)_panel'\)")


class ConsoleErrors(list):
    """Console errors and uncaught page errors, ignoring the GPU driver's chatter and the Bokeh race above."""

    def record(self, message) -> None:
        if message.type == "error":
            self.append(message.text)

    def append(self, text: str) -> None:
        if not BOKEH_LAYOUT_RACE.search(text):
            super().append(text)


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.console_errors = ConsoleErrors()
    page.on("console", page.console_errors.record)
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    yield page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
