"""An analyst asks the assistant in Chromium: Genie (the fake workspace, through the real SDK)
answers with SQL, a table and a chart; Claude streams a summary and offers follow-ups."""
from __future__ import annotations

import os

import pytest

from .conftest import ARTIFACTS
from .fake_workspace import SPACE_ID, FakeWorkspace
from .helpers import serve_demo_copy, wait_for_chart

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DATABASE = "browser_assistant"


@pytest.fixture(scope="module")
def workspace(pg):
    with FakeWorkspace(query_dsn=pg.admin_dsn(DATABASE)) as ws:
        yield ws


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template, workspace):
    with serve_demo_copy(tmp_path_factory.mktemp("assistant"), pg, demo_template, DATABASE, GENIE_SPACE_ID=SPACE_ID,
                         **workspace.env()) as app:
        yield app


def ask(page, question: str) -> None:
    box = page.get_by_placeholder("Ask about cities, orders or products")
    box.fill(question)
    box.press("Enter")


def test_ask_a_question_and_see_the_table_the_chart_and_follow_ups(served, page, workspace):
    page.goto(f"{served.url}/?workspace=assistant", wait_until="networkidle")
    ask(page, "Which cities have the most viewers?")
    page.get_by_text("10 rows · Genie").wait_for(timeout=20_000)
    # The table: ten cities (a small result is a plain table).
    rows = page.locator("table.result tbody tr")
    rows.first.wait_for()
    assert rows.count() == 10
    # The chart (category and number: bars), titled by the question.
    wait_for_chart(page, "^Which cities have the most viewers\\?")
    # Claude's summary streamed in, then follow-ups as buttons that ask them.
    page.get_by_text("Summary: the result has 10 rows").wait_for(timeout=10_000)
    follow_up = page.get_by_role("button", name="Which city converts best?")
    follow_up.wait_for(timeout=10_000)
    if os.environ.get("SCREENSHOTS"):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "assistant_answer.png"), full_page=True)
    asked = len(workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/conversations/", "POST"))
    follow_up.click()
    page.get_by_text("Which city converts best?").nth(1).wait_for()
    page.get_by_text("10 rows · Genie").nth(1).wait_for(timeout=20_000)
    assert len(workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/conversations/", "POST")) == asked + 1, \
        "the follow-up continued the same Genie conversation"
    assert page.console_errors == []


def test_a_refused_sql_command_is_explained_in_the_chat(served, page):
    page.goto(f"{served.url}/?workspace=assistant", wait_until="networkidle")
    ask(page, "/sql DELETE FROM orders")
    page.get_by_text("Only SELECT queries are allowed, not DELETE.").wait_for(timeout=10_000)
    assert page.console_errors == []


def test_a_reloaded_page_brings_the_conversation_back_and_its_link_opens_for_a_colleague(served, page, browser):
    page.goto(f"{served.url}/?workspace=assistant", wait_until="networkidle")
    ask(page, "Which cities have the most viewers?")
    page.get_by_text("10 rows · Genie").wait_for(timeout=20_000)
    page.get_by_text("Summary: the result has 10 rows").wait_for(timeout=10_000)
    page.locator("a.answer-link").first.wait_for(timeout=10_000)
    page.reload(wait_until="networkidle")
    page.get_by_text("result taken").first.wait_for(timeout=15_000)
    wait_for_chart(page, "^Which cities have the most viewers\\?")
    assert page.get_by_text("Summary: the result has 10 rows").count() >= 1, "the summary as it was"
    link = page.locator("a.answer-link").first.get_attribute("href")
    assert link.startswith("?workspace=assistant&answer=")

    colleague = browser.new_context(extra_http_headers={"X-Forwarded-Email": "ben@example.com"}).new_page()
    errors = []
    colleague.on("pageerror", lambda e: errors.append(str(e)))
    colleague.goto(f"{served.url}/{link}", wait_until="networkidle")
    colleague.get_by_text("Shared answer, asked by").wait_for(timeout=15_000)
    colleague.locator("table.result tbody tr").first.wait_for(timeout=10_000)
    assert colleague.locator("table.result tbody tr").count() == 10
    assert colleague.get_by_role("button", name="Helpful").count() == 0, "read-only: no thumbs"
    colleague.context.close()
    assert errors == [] and page.console_errors == []
