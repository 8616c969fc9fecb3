"""Small building blocks shared by the workspaces: stat cards, messages and a SQL-paged table."""
from __future__ import annotations

import functools
import logging
import threading
import time
import weakref
from dataclasses import replace
from typing import Callable

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param

from data.errors import AppError, classify
from data.paging import Page, PageQuery

from . import upstream_fixes
from .markup import HTML, Markup, Text, alert, html, join

log = logging.getLogger(__name__)

CARD_CSS = """
.card { border: 1px solid rgba(128, 128, 128, 0.28); border-radius: 10px; padding: 14px 18px;
        min-height: 96px; box-sizing: border-box; height: 100%; }
.card .label { font-size: 0.72rem; letter-spacing: 0.08em; text-transform: uppercase; opacity: 0.7; }
.card .value { font-size: 1.5rem; font-weight: 600; margin: 6px 0 4px; }
.card .detail { font-size: 0.85rem; opacity: 0.78; line-height: 1.4; }
.card ol, .card ul { margin: 4px 0 0; padding-left: 18px; font-size: 0.85rem; line-height: 1.45; }
.card.good .value { color: #2e7d32; }
.card.bad .value { color: #d32f2f; }
.card.warn .value { color: #ed6c02; }
.card .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 12px; }
.cards > .card { flex: 1 1 220px; }
.empty { display: flex; align-items: center; justify-content: center; min-height: 120px; text-align: center;
         border: 1px dashed rgba(128, 128, 128, 0.45); border-radius: 10px; opacity: 0.85; padding: 12px; }
"""
# A placeholder that says what is coming and breathes, so the page does not look finished or stuck.
PLACEHOLDER_CSS = """
.drawing { height: 100%; display: flex; align-items: center; justify-content: center; border-radius: 10px;
           background: rgba(128, 128, 128, 0.08); opacity: 0.8; animation: drawing 1.2s ease-in-out infinite; }
@keyframes drawing { 50% { opacity: 0.45; } }
"""


def card_html(label: str, value: str, detail: str = "", *, tone: str = "default", accent: str | None = None,
              items: list[str] | None = None) -> Markup:
    """The markup of a card; `items` become a numbered list. `accent` is one of our palette's colours."""
    swatch = html('<span class="swatch" style="background:{}"></span>', accent) if accent else ""
    listing = html("<ol>{}</ol>", join(html("<li>{}</li>", i) for i in items)) if items else ""
    return html('<div class="card {}"><div class="label">{}{}</div><div class="value">{}</div>'
                '<div class="detail">{}</div>{}</div>', tone, swatch, label, value, detail, listing)


class Stat:
    """A card in a single HTML model (cheap for each session); `update` re-renders it."""

    def __init__(self, label: str, **layout):
        self.label = label
        self.pane = HTML(stylesheets=[CARD_CSS], styles={"flex": "1 1 200px"}, margin=(0, 12, 12, 0),
                                 sizing_mode="stretch_width", **layout)
        self.update("–")

    def update(self, value: str, detail: str = "", tone: str = "default", **extra) -> None:
        self.pane.object = card_html(self.label, value, detail, tone=tone, **extra)


def cards(*stats: Stat) -> pn.FlexBox:
    return pn.FlexBox(*(s.pane for s in stats), flex_wrap="wrap", sizing_mode="stretch_width")


def heading(text: str) -> HTML:
    return HTML(html("<h3 style='margin:12px 0 4px;font-weight:500'>{}</h3>", text), sizing_mode="stretch_width")


def empty_html(text: str) -> Markup:
    """What a chart, a table or a row of cards shows when there is nothing to show."""
    return html('<div class="empty">{}</div>', text)


class CardRow:
    """A row of cards in one HTML model, re-rendered in place (one message per update)."""

    def __init__(self):
        self.pane = HTML("", stylesheets=[CARD_CSS], sizing_mode="stretch_width")

    def show(self, cards_html: list[Markup] | None = None, *, empty: str | None = None) -> None:
        self.pane.object = empty_html(empty) if empty else html('<div class="cards">{}</div>', join(cards_html or []))


def chart_pane(chart, *, height: int = 320) -> pn.Column:
    """A HoloViews chart on the page, shown after the page's first view (`after_first_view`).
    Axes are not linked across charts: no two of ours share an axis, and Panel re-checks linked
    axes of every chart on the page at each change of its layout."""
    return after_first_view(pn.pane.HoloViews(chart, sizing_mode="stretch_width", linked_axes=False),
                            placeholder="Drawing the chart\u2026", height=height)


def after_first_view(content: pn.viewable.Viewable, *, placeholder: str, height: int) -> pn.Column:
    """`content` in a column. While the session's page is still on its way to the browser, the
    column holds a placeholder of `height` pixels saying `placeholder`, and `content` replaces it
    once the browser has shown the page: the text comes first and the charts follow, one by one in
    the order they were made. Building and drawing the Overview's two charts with the rest was 1.2 s
    of a 3 s first view (tests/bench/first_view.py). Built later (another tab, another workspace),
    `content` is there at once."""
    holder = pn.Column(sizing_mode="stretch_width", margin=0)
    if pn.state.curdoc is None or pn.state.loaded:
        holder.append(content)
        return holder
    holder.append(HTML(html('<div class="drawing">{}</div>', placeholder), stylesheets=[PLACEHOLDER_CSS],
                       height=height, sizing_mode="stretch_width", margin=0))
    document = pn.state.curdoc
    waiting = _AFTER_FIRST_VIEW.setdefault(document, [])
    waiting.append(lambda: holder.__setitem__(slice(None), [content]))
    if len(waiting) == 1:
        # Panel runs onload callbacks on its thread pool; the swaps go to the event loop, under the
        # document's lock, so they never interleave with the browser's first events (a chart built
        # beside them was dropped by the server while the browser still drew it).
        pn.state.onload(lambda: pn.state.execute(functools.partial(_show_next, document), schedule=True))
    return holder


_AFTER_FIRST_VIEW: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # document -> swaps to make


def _show_next(document) -> None:
    """Make the next swap; the one after waits for the next turn of the event loop, after this
    one's patch has been sent, so the first chart is drawn while the second is being built."""
    waiting = _AFTER_FIRST_VIEW.get(document) or []
    if waiting:
        waiting.pop(0)()
    if waiting:
        pn.state.execute(functools.partial(_show_next, document), schedule=True)
    else:
        _AFTER_FIRST_VIEW.pop(document, None)


def dependencies(data: Callable) -> list[param.Parameter]:
    """The parameters a state method reads, as its @param.depends states them (the one place)."""
    owner = data.__self__
    return [dep.inst.param[dep.name] for dep in owner.param.method_dependencies(data.__name__)]


def on_change(data: Callable, callback: Callable[[], None]) -> None:
    """Call `callback` whenever anything `data` (a state method with @param.depends) reads changes
    (once per change of several of an object's parameters at once)."""
    owners: dict[int, tuple[param.Parameterized, list[str]]] = {}
    for parameter in dependencies(data):
        owners.setdefault(id(parameter.owner), (parameter.owner, []))[1].append(parameter.name)
    for owner, names in owners.values():
        owner.param.watch(lambda _: callback(), names)


def follows(data: Callable, render: Callable) -> Callable:
    """`render(data())`, bound to what `data` depends on: a DynamicMap of it is redrawn when they change."""
    return pn.bind(lambda *_: render(data()), *dependencies(data))


class LiveChart(pn.viewable.Viewer):
    """A chart redrawn in place when its data changes (a DynamicMap: new data, same figure, so no
    new Bokeh plot per change). `data` is a state method whose @param.depends says what it reads;
    `render(data())` returns (element, None), or (element, text) when there is nothing to plot: the
    text replaces the chart. A failed read shows its message."""

    def __init__(self, data: Callable, render: Callable, **params):
        super().__init__(**params)
        self._data, self._render = data, render
        self._last = None
        self.message = HTML("", stylesheets=[CARD_CSS], visible=False, sizing_mode="stretch_width")
        inputs = dependencies(data)
        self.dmap = hv.DynamicMap(pn.bind(self._frame, *inputs))
        self.pane = chart_pane(self.dmap)
        # Shown and hidden through a column around it: flipping the HoloViews pane's own `visible`
        # inside its redraw makes Panel re-render it there, which fails ("unexpected attribute
        # 'design' to figure"), and the chart after a message never came.
        self.frame = pn.Column(self.pane, sizing_mode="stretch_width", margin=0)
        # A view shown again (another workspace and back) renders the DynamicMap afresh, which
        # takes the frame from its cache, kept from the first inputs: forget it when they change.
        for parameter in inputs:
            parameter.owner.param.watch(lambda _: self.dmap.data.clear(), parameter.name)

    def _frame(self, *_inputs):
        try:
            element, empty = self._render(self._data())
        except Exception as exc:  # show why, keep the last good frame underneath
            error = classify(exc)
            if not isinstance(exc, AppError):
                log.exception("chart failed")
            element, empty = self._last, error.message
            if element is None:
                raise
        self._last = element
        self.message.object = empty_html(empty) if empty else ""
        self.message.visible, self.frame.visible = bool(empty), not empty
        return element

    def __panel__(self):
        return pn.Column(self.message, self.frame, sizing_mode="stretch_width")


def notice(message_param: param.Parameter, severity: str = "warning") -> pmui.Alert:
    """A closable message bound to a string parameter; hidden while the string is empty."""
    return alert(message_param, severity=severity, closeable=True, margin=(0, 0, 8, 0))


def outcome_alerts(error: param.Parameter, notice: param.Parameter) -> pn.Column:
    """What the last action did, where the person acted: `error` (why it was refused) in red,
    `notice` (what was saved) in green; each hidden while empty."""
    return pn.Column(alert(error, severity="error"), alert(notice, severity="success"), sizing_mode="stretch_width",
                     margin=0)


def refusals_html(message: str, reasons: dict[str, list[str]], limit: int = 50) -> Markup:
    """Why a bulk action or an import wrote nothing: the message, then each refused order or row."""
    items = join(html("<li>{}: {}</li>", where, "; ".join(why)) for where, why in list(reasons.items())[:limit])
    more = html("…and {} more", f"{len(reasons) - limit:,}") if len(reasons) > limit else ""
    return html("<div class='empty' style='justify-content:flex-start;text-align:left'><div><b>{}</b><ul>{}</ul>{}"
                "</div></div>", message, items, more)


LIVE_CHANGE_SECONDS = 6
LIVE_CHANGE = {"animation": f"live-change {LIVE_CHANGE_SECONDS}s ease-out"}      # a cell others just changed
LIVE_CHANGE_CSS = "@keyframes live-change { from { background-color: #ffe082; } to { background-color: transparent; } }"


class SqlTable(pn.viewable.Viewer):
    """One page of a SQL-backed listing in a Tabulator. Header sorting, header filters and the page
    controls re-query the database; only the visible page lives in the session."""

    query = param.ClassSelector(class_=PageQuery, doc="Page, size, sort and filters the user chose.")
    page = param.ClassSelector(class_=Page, doc="The page last fetched.")
    selected_keys = param.List(default=[], doc="Keys of the rows checked on the visible page.")
    message = param.String(default="", doc="Why the last request failed (a bad filter, say).")
    loading = param.Boolean(default=False, doc="A query is running.")

    def __init__(self, fetch: Callable[[PageQuery], Page], *, key: str, page_size: int = 25,
                 header_filters: dict | None = None,
                 on_edit: Callable[[dict, str, object], dict | None] | None = None, **tabulator):
        """`on_edit(row_before, column, new_value)` saves an edited cell and returns the row as it now
        is (patched in), or None to put the old value back. Without it the table is read-only."""
        super().__init__(query=PageQuery(size=page_size))
        self._fetch = fetch
        self._on_edit = on_edit
        self._shown: list[dict] = []                 # the rows as last sent: what an edit changes from
        self._replaced: dict[tuple, tuple] = {}      # (key, column) -> (value before, when) of live updates
        self._touched: dict[object, float] = {}      # key -> when a cell of its row was last clicked
        self._marks: dict[tuple, float] = {}         # (row label, column) -> when it was marked as changed
        self.held: set = set()                       # keys of rows a live update left alone (read again next)
        self._lock = threading.Lock()                # a live update against an edit's wait for its data
        self.key = key
        tabulator.setdefault("layout", "fit_data_stretch")
        tabulator["stylesheets"] = [*tabulator.get("stylesheets", []), LIVE_CHANGE_CSS]
        self.table = pn.widgets.Tabulator(
            pd.DataFrame(), show_index=False, pagination=None, sizing_mode="stretch_width",
            header_filters=header_filters or {}, selectable="checkbox", disabled=on_edit is None,
            configuration={"filterMode": "remote", "sortMode": "remote"}, **tabulator)
        if on_edit is not None:
            self.table.on_edit(self._edited)
            self.table.on_click(self._clicked)
        self.pages = pmui.Pagination(count=1, value=0, width=420)
        self.caption = Text("", margin=(10, 12))
        self.table.param.watch(self._on_sort, "sorters")
        self.table.param.watch(self._on_filter, "filters")
        self.table.param.watch(self._on_select, "selection")
        self.pages.param.watch(self._on_page, "value")

    # -- user actions ---------------------------------------------------------------------

    def _on_sort(self, event) -> None:
        sort = tuple((s["field"], s.get("dir") == "desc") for s in event.new or [])
        self.query = replace(self.query, sort=sort, page=1)
        self.refresh()

    def _on_filter(self, event) -> None:
        filters = tuple(sorted((f["field"], f["value"]) for f in event.new or [] if f.get("value") not in ("", None)))
        self.query = replace(self.query, filters=filters, page=1)
        self.refresh()

    def _on_page(self, event) -> None:
        if self.page is not None and event.new + 1 != self.page.page:
            self.query = replace(self.query, page=event.new + 1)    # found from the page shown now
            self.refresh()

    def _on_select(self, event) -> None:
        rows = self.table.value
        self.selected_keys = [_plain(rows.iloc[i][self.key]) for i in event.new if i < len(rows)]

    def _clicked(self, event) -> None:
        """A click in a row may start an edit there: live updates leave the row alone until the edit
        is handled (the browser drops a cell's editor when its row is updated under it)."""
        if event.row < len(self._shown):
            self._touched[self._shown[event.row].get(self.key)] = time.monotonic()

    def _edited(self, event) -> None:
        value = self._typed(event.row, event.column)
        # What this table last showed, not Tabulator's `event.old`, which can come from an earlier page.
        old = self._seen(event.row, event.column)
        before = {**self._shown[event.row], event.column: old}      # what the save is checked against
        if _same(value, self._shown[event.row][event.column]):
            if threading.current_thread() is not threading.main_thread():    # waited, and it never came
                log.warning("edit not received table=%s column=%s", self.key, event.column)
                self.message = "Your change did not reach the server, so nothing was saved: please make it again."
                self.replace_row(event.row, before)  # the browser shows what it typed: show the truth
            return

        after = self._on_edit(before, event.column, value)
        self.replace_row(event.row, after if after is not None else before)
        self._touched.pop(before.get(self.key), None)

    def _typed(self, position: int, column: str):
        """What the person typed: the cell's data once it differs from what this table last sent
        there. Read together with the sent value, under the lock a live update holds while it
        changes both, so a colleague's value arriving meanwhile is never taken for the typed one."""
        def read() -> tuple:
            with self._lock:
                return _plain(self.table.value[column].iloc[position]), self._shown[position][column]
        return upstream_fixes.typed_cell_value(read, _same)

    def replace_row(self, position: int, values: dict) -> None:
        """Show `values` in the row at `position` (only the table's own columns)."""
        with self._lock:
            frame = self.table.value
            changes = {c: [(frame.index[position], v)] for c, v in values.items() if c in frame.columns}
            self._shown[position].update({c: _plain(v) for c, v in values.items() if c in frame.columns})
            self.table.patch(changes)

    LIVE_GRACE = 10.0      # seconds after a live update in which an edit of that cell started before it
    EDIT_GRACE = 30.0      # seconds after a click in a row during which live updates leave it alone

    def _seen(self, position: int, column: str):
        """What the person saw in the cell: the value before a live update of the last few seconds
        (they may have been typing over it), else the value shown. Their save is then checked
        against that, and a colleague's new value is a conflict, never overwritten."""
        before = self._replaced.get((self._shown[position].get(self.key), column))
        if before is not None and time.monotonic() - before[1] < self.LIVE_GRACE:
            return before[0]
        return self._shown[position][column]

    def update_rows(self, rows: list[dict], mark: Callable[[dict, list[str]], list[str]] | None = None
                    ) -> list[tuple[dict, list[str]]]:
        """Show rows as they now are (others changed them), in one patch: each row on the page whose
        shown cells differ is updated there, and the cells `mark(row, changed columns)` names are
        given the `live-change` animation (the table's stylesheet defines it).
        Returns (row, changed columns) of each."""
        with self._lock:      # against an edit's wait, which reads the cell and what was sent together
            changed, patch = self._take_changes(rows)
            if not patch:
                return []
            if mark is not None and self.table.style is not None:
                index, now = self.table.value.index, time.monotonic()
                for position, row, columns in changed:
                    self._marks.update({(index[position], c): now for c in mark(row, columns)})
                self._restyle(now)
            self.table.patch(patch)
        return [(row, columns) for _, row, columns in changed]

    def _restyle(self, now: float) -> None:
        """The animation on every cell marked within its length: an update's styles replace the
        table's, so a busy browser that receives two updates at once still flashes both."""
        self._marks = {cell: at for cell, at in self._marks.items() if now - at < LIVE_CHANGE_SECONDS}
        # Panel has no public way to restyle cells; the table sends its styles after the patch (the
        # browser applies the current styles after each data update, so either order flashes).
        self.table.style.clear()
        by_column: dict[str, list] = {}
        for label, column in self._marks:
            by_column.setdefault(column, []).append(label)
        for column, labels in by_column.items():
            self.table.style.set_properties(subset=(labels, [column]), **LIVE_CHANGE)

    def _take_changes(self, rows: list[dict]) -> tuple[list[tuple[int, dict, list[str]]], dict[str, list]]:
        """Which shown cells of `rows` to update, recorded as shown, and the patch that shows them."""
        frame, positions = self.table.value, {r.get(self.key): i for i, r in enumerate(self._shown)}
        patch: dict[str, list] = {}
        changed = []
        now = time.monotonic()
        for row in rows:
            key = _plain(row.get(self.key))
            position = positions.get(key)
            if position is None:
                continue
            if now - self._touched.get(key, -1e9) < self.EDIT_GRACE:
                self.held.add(key)
                continue
            self.held.discard(key)
            shown = self._shown[position]
            # A cell whose typed value has landed but whose edit is not handled yet is left alone:
            # the edit is then checked against what was shown, and the colleague's value is a conflict.
            columns = [c for c in frame.columns if c in row and not _same(_plain(row[c]), shown.get(c))
                       and _same(_plain(frame[c].iloc[position]), shown.get(c))]
            for column in columns:
                self._replaced[(shown[self.key], column)] = (shown.get(column), now)
                shown[column] = _plain(row[column])
                patch.setdefault(column, []).append((frame.index[position], row[column]))
            if columns:
                changed.append((position, row, columns))
        return changed, patch

    def keys(self) -> set:
        """The keys of the rows on the page."""
        return {r.get(self.key) for r in self._shown}

    def position_of(self, key) -> int | None:
        matches = [i for i, k in enumerate(self.table.value.get(self.key, [])) if _plain(k) == key]
        return matches[0] if matches else None

    # -- state ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to page 1 (the caller's context changed: another city, say)."""
        self.query = replace(self.query, page=1)
        self.refresh()

    def refresh(self) -> None:
        self.loading = True
        try:
            page = self._fetch(replace(self.query, bookmark=self.page.bookmark if self.page else None))
        except AppError as exc:
            self.message = exc.message
            return
        finally:
            self.loading = False
        self.message = ""
        with pn.io.hold():
            self.page = page
            self.table.selection = []
            self.table.value = page.rows.copy()   # Tabulator edits its value in place: never share
            self._shown = [{k: _plain(v) for k, v in row.items()} for row in page.rows.to_dict("records")]
            self._replaced.clear()
            self._touched.clear()
            self.held.clear()
            self._marks.clear()
            if self.table.style is not None:
                self.table.style.clear()          # highlights belong to the page they were made on
            self.pages.param.update(count=page.pages, value=page.page - 1)
            self.caption.object = (f"Rows {page.first_row:,}–{page.last_row:,} of {page.total:,}" if page.total
                                   else "No rows match")

    def check(self, keys) -> None:
        """Tick the rows whose key is in `keys` (those on the visible page)."""
        wanted = set(keys)
        self.table.selection = [i for i, k in enumerate(self.table.value.get(self.key, [])) if k in wanted]

    @param.depends("loading", watch=True)
    def _show_loading(self) -> None:
        self.table.loading = self.loading

    def __panel__(self):
        return pn.Column(notice(self.param.message), self.table,
                         pn.Row(self.pages, self.caption, align="center"), sizing_mode="stretch_width")


def _same(a, b) -> bool:
    try:
        return bool(a == b) or (pd.isna(a) and pd.isna(b))
    except (TypeError, ValueError):
        return False


def _plain(value):
    """NumPy scalars (as Tabulator reports them) to plain Python values for the data layer."""
    if isinstance(value, np.datetime64):
        return pd.Timestamp(value)
    return value.item() if isinstance(value, np.generic) else value


def failure_alert(exc: Exception, render: Callable, hint: str = "") -> pmui.Alert:
    """The message a view shows instead of itself when building it failed (unexpected ones logged)."""
    if not isinstance(exc, AppError):
        logging.getLogger(render.__module__).exception("view %s failed", render.__name__)
    return alert(f"{classify(exc).message}{hint}", severity="error")


def shown_again(view) -> None:
    """Tell a view it is on screen again, so one that could not load (the database was away) retries:
    a view may define `shown()`."""
    shown = getattr(view, "shown", None)
    if callable(shown):
        shown()


class LazyTabs(pn.viewable.Viewer):
    """Tabs whose views are built the first time they are shown and then stay on the page, hidden
    while another tab is shown: switching back only flips two `visible` flags instead of building
    and sending every model of the view again (which cost most of the server's time under load).
    Built from a TabMenu and a column of slots: Material Tabs with dynamic=True break Bokeh plots'
    layout when switching (a JavaScript error); this does not."""

    active = param.Integer(default=0, doc="Index of the tab on screen.")

    @classmethod
    def of(cls, selector: param.Parameter, tabs: dict[str, tuple[str, Callable[[], pn.viewable.Viewable]]]
           ) -> "LazyTabs":
        """Tabs that show, and set, a Selector parameter of a state object: one tab per value (the
        keys of `tabs`, each with its label and the builder of its view)."""
        owner, name, keys = selector.owner, selector.name, list(tabs)
        view = cls([tabs[key] for key in keys], active=keys.index(getattr(owner, name)))
        view.param.watch(lambda e: owner.param.update({name: keys[e.new]}), "active")
        owner.param.watch(lambda e: view.param.update(active=keys.index(e.new)), name)
        return view

    def __init__(self, tabs: list[tuple[str, Callable[[], pn.viewable.Viewable]]], **params):
        super().__init__(**params)
        self._labels = [label for label, _ in tabs]
        self._builders = [builder for _, builder in tabs]
        self._failed: set[int] = set()
        self._views: dict[int, object] = {}            # as built (a Column holds a Viewer's __panel__)
        self.slots = [pn.Column(sizing_mode="stretch_width", visible=False, margin=0) for _ in tabs]
        self.menu = pmui.TabMenu(items=self._labels, active=self.active, sizing_mode="stretch_width")
        self.body = pn.Column(*self.slots, sizing_mode="stretch_width", margin=0)
        self.menu.param.watch(lambda e: self.param.update(active=e.new), "active")
        self._show()

    def _build(self, index: int) -> pn.viewable.Viewable:
        """The tab's view; if building it failed (the database was away, say), a message, and the
        view is built again the next time the tab is shown."""
        builder = self._builders[index]
        try:
            view = builder()
        except Exception as exc:
            self._failed.add(index)
            return failure_alert(exc, builder, " Open this tab again to retry.")
        self._failed.discard(index)
        return view

    def shown(self) -> None:
        """These tabs are on screen again (a tab of an outer LazyTabs): retry what failed."""
        self._show()

    @property
    def labels(self) -> list[str]:
        return list(self._labels)

    @param.depends("active", watch=True)
    def _show(self) -> None:
        slot = self.slots[self.active]
        if not slot.objects or self.active in self._failed:
            self._views[self.active] = self._build(self.active)
            slot.objects = [self._views[self.active]]
        else:
            shown_again(self._views[self.active])
        self.menu.active = self.active
        for index, other in enumerate(self.slots):
            other.visible = index == self.active

    def __panel__(self):
        return pn.Column(self.menu, self.body, sizing_mode="stretch_width")
