"""A person opens the app in Chromium and reads the System workspace."""
from __future__ import annotations

import re

import pytest

from .helpers import APP_ROLE, APP_ROLE_PASSWORD, ServedApp, isolated_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def served(tmp_path, pg, database_name):
    env = isolated_env(tmp_path, PGHOST="127.0.0.1", PGPORT=pg.port, PGUSER=APP_ROLE, PGPASSWORD=APP_ROLE_PASSWORD,
                       PGDATABASE=database_name, PGSSLMODE="disable")
    with ServedApp(env, tmp_path / "app.log") as app:
        app.wait_until_ready()
        yield app
        app.stop()


def test_system_workspace_shows_live_figures(served, page):
    page.goto(served.url, wait_until="networkidle")
    page.get_by_text("Lakebase Panel").first.wait_for()
    page.get_by_role("tab", name="System").click()
    page.get_by_text("Connection pool").wait_for()
    assert "workspace=system" in page.url
    # "in use / pool size", e.g. "0 / 5": the pool figure is there and non-zero.
    page.locator(".value").get_by_text(re.compile(r"^\d+ / [1-9]\d*$")).wait_for()
    # Every process of the app is listed, with the one serving this page marked.
    page.get_by_text("Every process of the app").wait_for()
    page.get_by_text(re.compile(r":\d+ \(this session\)$")).wait_for(timeout=10_000)
    page.get_by_text("Up", exact=True).wait_for()
    page.get_by_text("PostgreSQL (password)").first.wait_for()
    # The latency table fills in as the page itself queries the database.
    page.get_by_text("health_check").first.wait_for(timeout=10_000)
    assert page.console_errors == []


def test_signed_in_user_comes_from_the_forwarded_header(served, browser):
    context = browser.new_context(extra_http_headers={"X-Forwarded-Email": "analyst@example.com"})
    page = context.new_page()
    page.goto(served.url, wait_until="networkidle")
    page.get_by_text("analyst@example.com").wait_for()
    context.close()
