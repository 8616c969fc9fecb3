"""An analyst asks the assistant in Chromium: Genie (the fake workspace, through the real SDK)
answers with SQL, a table and a chart; Claude streams a summary and offers follow-ups."""
from __future__ import annotations

import os
import re

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
    # A budget these tests never reach: at Genie's default of 5 a minute (3 per process) a faster run
    # made "Check now" wait for the next minute behind the module's earlier questions.
    with serve_demo_copy(tmp_path_factory.mktemp("assistant"), pg, demo_template, DATABASE, GENIE_SPACE_ID=SPACE_ID,
                         ASSISTANT_EDITORS="*", GENIE_QUESTIONS_PER_MINUTE=600, **workspace.env()) as app:
        yield app


def as_user(page, email: str) -> None:
    """Sign the page in as someone of their own (Databricks Apps' header): each person's kept
    conversation comes back when they open the Assistant, so tests keep theirs apart."""
    page.set_extra_http_headers({"X-Forwarded-Email": email})


def ask(page, question: str) -> None:
    box = page.get_by_placeholder("Ask about cities, orders or products")
    box.fill(question)
    box.press("Enter")


def test_ask_a_question_and_see_the_table_the_chart_and_follow_ups(served, page, workspace):
    as_user(page, "asks@example.com")
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
    as_user(page, "refused@example.com")
    page.goto(f"{served.url}/?workspace=assistant", wait_until="networkidle")
    ask(page, "/sql DELETE FROM orders")
    page.get_by_text("Only SELECT queries are allowed, not DELETE.").wait_for(timeout=10_000)
    assert page.console_errors == []


def test_a_reloaded_page_brings_the_conversation_back_and_its_link_opens_for_a_colleague(served, page, browser):
    as_user(page, "reloads@example.com")
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
    assert colleague.get_by_role("button", name="Helpful", exact=True).count() == 0, "read-only: no thumbs"
    colleague.context.close()
    assert errors == [] and page.console_errors == []


def test_cities_picked_in_the_investment_matrix_are_asked_about_in_the_assistant(served, page):
    as_user(page, "picks@example.com")
    page.goto(f"{served.url}/?workspace=marketplace", wait_until="networkidle")
    wait_for_chart(page, "^Investment priority matrix")
    button = page.get_by_role("button", name=re.compile(r"Ask about (these \d+ cities|this city)$"))
    for attempt in range(3):          # a drag the moment the chart appears may come before its tools listen
        plot = page.locator(".bk-Canvas, canvas").first.bounding_box()
        page.mouse.move(plot["x"] + plot["width"] * 0.1, plot["y"] + plot["height"] * 0.1)      # the top left
        page.mouse.down()
        page.mouse.move(plot["x"] + plot["width"] * 0.4, plot["y"] + plot["height"] * 0.45, steps=12)
        page.mouse.up()
        try:
            button.wait_for(timeout=5_000)
            break
        except Exception:
            if attempt == 2:
                raise
    picked = re.search(r"\d+", button.inner_text())
    count = int(picked.group()) if picked else 1
    button.click()
    page.get_by_text("Compare demand, conversion and estimated revenue for").first.wait_for(timeout=10_000)
    page.get_by_text(re.compile(rf"The SQL keeps to the {count} cit(y|ies) you selected\.")).wait_for(timeout=20_000)
    assert page.console_errors == []


def test_a_helpful_answer_is_verified_and_checked_again(served, page):
    as_user(page, "verifies@example.com")
    page.goto(f"{served.url}/?workspace=assistant", wait_until="networkidle")
    ask(page, "Which 3 cities convert best?")
    page.get_by_text("10 rows · Genie").last.wait_for(timeout=20_000)
    page.get_by_role("button", name="Which city converts best?").last.wait_for(timeout=10_000)   # drawn whole
    page.get_by_role("button", name="Helpful", exact=True).last.click()
    page.get_by_text("Thanks, noted.").wait_for(timeout=10_000)
    page.get_by_role("button", name=re.compile("Verify this answer")).click()
    page.get_by_text("Verified: Genie will be asked this again").wait_for(timeout=10_000)
    page.get_by_text("Verified", exact=True).first.click()
    page.locator(".insight:visible", has_text="Which 3 cities convert best?").wait_for(timeout=10_000)
    page.locator("button:visible", has_text="Check now").click()
    page.get_by_text(re.compile(r"Checked \d+ questions?: \d+ still match")).wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"Latest check .*still match")).wait_for(timeout=10_000)
    assert page.console_errors == []
