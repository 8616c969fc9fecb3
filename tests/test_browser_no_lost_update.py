"""Two people at once, in two browsers: nobody's change is overwritten, and the page says "saved"
only for what was stored, however quickly Save is clicked after typing."""
from __future__ import annotations

import pytest

from .helpers import plain_sql, serve_demo_copy
from .test_browser_orders import edit, open_order_in_grid, pick

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DATABASE = "browser_no_lost_update"


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template):
    with serve_demo_copy(tmp_path_factory.mktemp("no_lost_update"), pg, demo_template, DATABASE,
                         ORDER_EDITORS="*") as app:
        yield app


@pytest.fixture
def sql(pg):
    with plain_sql(pg, DATABASE) as run:
        yield run


@pytest.fixture
def second_page(browser):
    from .conftest import ConsoleErrors
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    other = context.new_page()
    other.console_errors = ConsoleErrors()
    other.on("console", other.console_errors.record)
    yield other
    context.close()


def customer_of(sql, order_id: int) -> str:
    return sql("SELECT c.name FROM retail360.customers c JOIN retail360.orders o USING (customer_id) "
               "WHERE o.order_id = %s", order_id)[0][0]


def open_form(page, served, order_id: int):
    page.goto(f"{served.url}/?workspace=orders&order={order_id}", wait_until="networkidle")
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Notes").wait_for()
    return dialog


def test_two_people_renaming_the_same_customer_in_the_grid(served, page, second_page, sql):
    order_id = pick(sql, "pending", 3)
    mine, theirs = open_order_in_grid(page, served, order_id), open_order_in_grid(second_page, served, order_id)
    edit(mine, "customer", "Renamed By Ana")
    page.get_by_text(f"Order {order_id}: customer saved (version").wait_for()
    edit(theirs, "customer", "Renamed By Bo")
    second_page.get_by_text(f"Order {order_id}: Customer changed by ").wait_for()
    assert second_page.get_by_text(f"Order {order_id}: customer saved (version").count() == 0
    assert customer_of(sql, order_id) == "Renamed By Ana"
    assert page.console_errors == [] and second_page.console_errors == []


def test_the_form_writes_only_the_field_the_person_changed(served, page, sql):
    order_id = pick(sql, "pending", 4)
    dialog = open_form(page, served, order_id)
    sql("UPDATE retail360.customers SET name = 'Renamed By A Colleague' WHERE customer_id = "
        "(SELECT customer_id FROM retail360.orders WHERE order_id = %s)", order_id)
    dialog.get_by_label("Notes").fill("only the notes")
    dialog.get_by_role("button", name="Save").click()
    dialog.get_by_text(f"Order {order_id} saved (version").wait_for()
    assert customer_of(sql, order_id) == "Renamed By A Colleague"
    assert sql("SELECT notes FROM retail360.orders WHERE order_id = %s", order_id) == [("only the notes",)]
    assert page.console_errors == []


def test_a_form_and_a_grid_on_the_same_field(served, page, second_page, sql):
    order_id = pick(sql, "pending", 5)
    dialog = open_form(page, served, order_id)
    row = open_order_in_grid(second_page, served, order_id)
    edit(row, "notes", "from the grid")
    second_page.get_by_text(f"Order {order_id}: notes saved (version").wait_for()
    dialog.get_by_label("Notes").fill("from the form")
    dialog.get_by_role("button", name="Save").click()
    dialog.get_by_text(f"Order {order_id}: Notes changed by ").wait_for()
    assert sql("SELECT notes FROM retail360.orders WHERE order_id = %s", order_id) == [("from the grid",)]
    assert dialog.get_by_text("saved (version").count() == 0
    page.screenshot(path="tests/artifacts/conflict-chooser-form.png")
    dialog.get_by_role("button", name="Use mine").click()        # having seen theirs, the form's value wins
    dialog.get_by_text("saved (version").wait_for()
    assert sql("SELECT notes FROM retail360.orders WHERE order_id = %s", order_id) == [("from the form",)]


def test_save_clicked_the_instant_after_typing_saves_what_was_typed(served, page, sql):
    order_id = pick(sql, "pending", 6)
    dialog = open_form(page, served, order_id)
    notes, save = dialog.get_by_label("Notes"), dialog.get_by_role("button", name="Save")
    for attempt in range(12):
        version = sql("SELECT version FROM retail360.orders WHERE order_id = %s", order_id)[0][0]
        typed = f"typed then clicked at once {attempt}"
        save.scroll_into_view_if_needed()
        box = save.bounding_box()                # the layout moves as messages come and go
        where = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        notes.fill(typed)
        page.mouse.click(*where)                 # no pause between the last key and the click
        said = dialog.get_by_text(f"Order {order_id} saved (version {version + 1})")
        said.or_(dialog.get_by_text("Nothing has changed")).wait_for()
        stored = sql("SELECT notes FROM retail360.orders WHERE order_id = %s", order_id)[0][0]
        assert said.count() == 1, f"attempt {attempt}: not saved as typed"
        assert stored == typed, f"attempt {attempt}: the page said saved, the database has {stored!r}"
    assert page.console_errors == [], "no browser error on save (the History tab is filled only when shown)"


@pytest.fixture
def two_people(browser):
    """Ana and Bo, each in a browser of their own, signed in as themselves."""
    from .conftest import ConsoleErrors
    pages = []
    for who in ("ana", "bo"):
        context = browser.new_context(viewport={"width": 1400, "height": 900},
                                      extra_http_headers={"X-Forwarded-Email": f"{who}@example.com"})
        page = context.new_page()
        page.console_errors = ConsoleErrors()
        page.on("console", page.console_errors.record)
        pages.append(page)
    yield pages
    for page in pages:
        page.context.close()


def test_a_change_shows_in_a_colleague_s_open_grid_marked_and_signed(served, two_people, sql):
    """Ana saves a note; Bo, with the same order on screen, sees it in his row within 2 s, the cell
    flashing, and a line saying Ana changed the notes. Ana's own grid marks nothing."""
    import time
    ana, bo = two_people
    order_id = pick(sql, "pending", 7)
    ana_row, bo_row = open_order_in_grid(ana, served, order_id), open_order_in_grid(bo, served, order_id)
    edit(ana_row, "notes", "Ana: call before delivery")
    ana.get_by_text(f"Order {order_id}: notes saved (version").wait_for()
    saved = time.monotonic()
    bo_cell = bo_row.locator('.tabulator-cell[tabulator-field="notes"]')
    bo_cell.get_by_text("Ana: call before delivery").wait_for(timeout=2000)
    assert time.monotonic() - saved < 2.0
    bo.get_by_text(f"#{order_id}: notes changed by ana@example.com at").wait_for(timeout=2000)
    assert bo_cell.evaluate("cell => getComputedStyle(cell).animationName") == "live-change"
    bo.screenshot(path="tests/artifacts/live-row-update.png")
    assert ana.get_by_text("changed by ana@example.com").count() == 0
    assert ana.console_errors == [] and bo.console_errors == []


def test_a_bulk_change_is_undone_from_its_batch_and_a_colleague_sees_both(served, two_people, sql):
    """Ana confirms an order with the bulk action; Bo's grid shows it live. Ana opens the order's
    history, follows the change to its batch and undoes it there: the order is pending again, and
    Bo's grid follows."""
    ana, bo = two_people
    order_id = pick(sql, "pending", 8)
    ana_row, bo_row = open_order_in_grid(ana, served, order_id), open_order_in_grid(bo, served, order_id)
    bo_status = bo_row.locator('.tabulator-cell[tabulator-field="status"]')
    ana_row.locator("input[type='checkbox']").check()
    ana.get_by_role("button", name="Apply to 1").click()
    ana.get_by_text("1 order set to confirmed.").wait_for()
    bo_status.get_by_text("confirmed").wait_for(timeout=2000)
    dialog = open_form(ana, served, order_id)
    dialog.get_by_role("tab", name="History").click()
    dialog.locator('.tabulator-cell[tabulator-field="Batch"]').filter(has_text="status change").first.click()
    ana.get_by_text("status change · 1 order").wait_for()
    ana.get_by_role("button", name="Undo this batch").click()
    ana.get_by_text("Batch undone: 1 order put back in one transaction.").wait_for()
    assert sql("SELECT status FROM retail360.orders WHERE order_id = %s", order_id) == [("pending",)]
    bo_status.get_by_text("pending").wait_for(timeout=2000)
    ana.screenshot(path="tests/artifacts/undo-batch.png")
    assert ana.console_errors == [] and bo.console_errors == []


def test_bo_sees_ana_editing_the_order_he_has_open(served, two_people, sql):
    """Ana opens an order's form and types in its notes; Bo, with the order on his grid, sees that
    she has it open and then that she is editing its notes; when she closes it, the line goes. With
    the order's form open, Bo sees Ana click into one of its cells in her grid."""
    ana, bo = two_people
    order_id = pick(sql, "pending", 9)
    open_order_in_grid(bo, served, order_id)
    dialog = open_form(ana, served, order_id)
    bo.get_by_text(f"ana@example.com has #{order_id} open").wait_for(timeout=3000)
    dialog.get_by_label("Notes").fill("Ana is writing this")
    dialog.get_by_label("Notes").blur()
    bo.get_by_text(f"ana@example.com is editing #{order_id} notes").wait_for(timeout=3000)
    bo.screenshot(path="tests/artifacts/presence-in-grid.png")
    dialog.get_by_role("button", name="close").click()
    bo.get_by_text(f"ana@example.com is editing #{order_id} notes").wait_for(state="detached", timeout=3000)

    # Now Bo has the order's form open, and Ana clicks into its address in her grid.
    bo_dialog = open_form(bo, served, order_id)
    ana_row = open_order_in_grid(ana, served, order_id)
    ana_row.locator('.tabulator-cell[tabulator-field="shipping_address"]').click()
    bo_dialog.get_by_text("ana@example.com is editing shipping address").wait_for(timeout=3000)
    bo.screenshot(path="tests/artifacts/presence-in-form.png")
    assert ana.console_errors == [] and bo.console_errors == []
