"""Shared widgets on their own, without a server or database."""
from __future__ import annotations

import panel as pn

from dashboard.widgets import LazyTabs
from data.errors import AppError, Category

from .helpers import shown_text


def test_a_tab_is_built_when_first_shown_and_then_kept():
    built = []
    tabs = LazyTabs([("One", lambda: built.append(1) or pn.pane.Markdown("one")),
                     ("Two", lambda: built.append(2) or pn.pane.Markdown("two"))])
    tabs.active = 1
    tabs.active = 0
    tabs.active = 1
    assert built == [1, 2], "each view is built once"
    assert [slot.visible for slot in tabs.slots] == [False, True]


def test_a_tab_whose_build_failed_is_built_again_when_shown_again():
    database_up = False

    def orders():
        if not database_up:
            raise AppError("The database is not reachable right now.", category=Category.CONNECTION)
        return pn.pane.Markdown("orders")
    tabs = LazyTabs([("Home", lambda: pn.pane.Markdown("home")), ("Orders", orders)])
    tabs.active = 1
    message = tabs.slots[1].objects[0]
    assert shown_text(message) == "The database is not reachable right now. Open this tab again to retry."
    tabs.active = 0
    database_up = True
    tabs.active = 1
    assert tabs.slots[1].objects[0].object == "orders"


def test_a_view_shown_again_may_retry_what_it_could_not_load():
    class Grid(pn.viewable.Viewer):
        loads = 0

        def shown(self):
            self.loads += 1

        def __panel__(self):
            return pn.pane.Markdown("grid")
    grid = Grid()
    inner = LazyTabs([("Grid", lambda: grid)])
    outer = LazyTabs([("Home", lambda: pn.pane.Markdown("home")), ("Orders", lambda: inner)])
    outer.active = 1
    assert grid.loads == 0, "a view just built has just loaded"
    outer.active = 0
    outer.active = 1
    assert grid.loads == 1, "shown again through the outer and the inner tabs"


def test_while_the_page_travels_a_chart_is_a_placeholder_that_the_chart_replaces_once_shown():
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    from dashboard.widgets import after_first_view
    doc = Document()
    pn.state._loaded[doc] = False                 # a served session whose page has not been shown yet
    with set_curdoc(doc):
        column = after_first_view(pn.pane.Markdown("the chart"), placeholder="Drawing the chart…", height=300)
        assert shown_text(column.objects[0]) == "Drawing the chart…" and column.objects[0].height == 300
        pn.state._on_load(doc)                    # the browser reports the page shown
        assert column.objects[0].object == "the chart"
        later = after_first_view(pn.pane.Markdown("another chart"), placeholder="Drawing…", height=300)
        assert later.objects[0].object == "another chart", "built after the first view: at once"
    pn.state._loaded.pop(doc, None)


def test_without_a_session_the_content_is_there_at_once():
    from dashboard.widgets import after_first_view
    column = after_first_view(pn.pane.Markdown("the chart"), placeholder="Drawing…", height=300)
    assert column.objects[0].object == "the chart"
