"""The fixes for Panel and Bokeh: the write queue driven into the race that lost page updates (a
workspace switch that showed nothing), a table driven into the race that made it ignore cell edits,
and the faster model walk finding exactly what Bokeh's finds."""
from __future__ import annotations

import asyncio
import threading
from datetime import datetime
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import holoviews as hv
import pandas as pd
import panel as pn
import panel_material_ui as pmui
import pytest
from bokeh.document import Document
from bokeh.model import util as model_util
from bokeh.model import Model
from bokeh.models import Plot
from panel.io import document

from dashboard import upstream_fixes
from dashboard.assistant.charts import answer_chart
from dashboard.widgets import chart_pane

from .helpers import eventually, run_async

patch_doc = upstream_fixes.patch_doc          # the module (bokeh.protocol.messages names the class so)


class RecordingSocket:
    """A client socket whose writes finish when the test says so."""

    def __init__(self):
        self.written: list[str] = []
        self.pending: list[asyncio.Future] = []


def write(conn, msg=None, **_):
    conn._socket.written.append(msg)
    future = asyncio.get_running_loop().create_future()
    conn._socket.pending.append(future)
    return [future]


class Connection:
    """The two things Panel's queue uses of Bokeh's ServerConnection."""

    def __init__(self):
        self._socket = RecordingSocket()
        self.protocol = SimpleNamespace(create=lambda kind, events: events[0])    # a message is its one event


@pytest.fixture
def connection(monkeypatch):
    monkeypatch.setitem(document.extra_socket_handlers, RecordingSocket, write)
    return Connection()


@pytest.fixture
def panel_as_shipped(monkeypatch):
    """Panel's write task without our fix (configure_panel may have applied it in this process)."""
    monkeypatch.setattr(document, "_dispatch_msgs", getattr(document._dispatch_msgs, "__wrapped__",
                                                           document._dispatch_msgs))


def in_own_loop(coroutine):
    """Run on a fresh event loop in a thread of its own (other tests may leave one running here)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


async def queue_a_change_while_a_write_is_finishing(connection) -> list[str]:
    doc = Document()
    document.schedule_write_events(doc, [connection], ["switch to Orders"])
    await asyncio.sleep(0.05)                                 # the first write is on the socket
    connection._socket.pending[0].set_result(None)           # ...and finishes; its task wakes next
    document.schedule_write_events(doc, [connection], ["show the Orders slot"])    # queued just behind it
    await asyncio.sleep(0.05)
    for future in connection._socket.pending:
        if not future.done():
            future.set_result(None)
    await asyncio.sleep(0.05)
    return connection._socket.written


def test_panel_alone_leaves_a_change_queued_behind_a_finishing_write(connection, panel_as_shipped):
    """The bug, shown on the installed Panel: if this starts failing, Panel fixed it and the patch can go."""
    assert in_own_loop(queue_a_change_while_a_write_is_finishing(connection)) == ["switch to Orders"]


def test_with_the_fix_every_queued_change_is_written_in_order(connection, panel_as_shipped):
    upstream_fixes.write_everything_queued()
    upstream_fixes.write_everything_queued()                     # applying twice wraps once
    assert getattr(document._dispatch_msgs.__wrapped__, "writes_everything", False) is False
    written = in_own_loop(queue_a_change_while_a_write_is_finishing(connection))
    assert written == ["switch to Orders", "show the Orders slot"]


@pytest.fixture
def tables_as_shipped(monkeypatch):
    """Panel's Tabulator without our fix."""
    for name in upstream_fixes._TABLE_UPDATES:
        method = getattr(pn.widgets.Tabulator, name)
        monkeypatch.setattr(pn.widgets.Tabulator, name, getattr(method, "__wrapped__", method))


def edit_while_the_saved_row_is_patched_in() -> tuple[bool, list[str]]:
    """The browser's cell edit is being applied (one thread) when our handler patches the saved row
    back in (another), and the handler's patch ends last; then the person edits again.
    Returns whether the table is left marked busy, and its notes after the second edit."""
    table = pn.widgets.Tabulator(pd.DataFrame({"order_id": [1, 2], "notes": ["", ""]}))
    browser_inside, browser_go, handler_inside, handler_go = (threading.Event() for _ in range(4))
    table.param.watch(lambda _: (browser_inside.set(), browser_go.wait(5)), "value")
    restyle = table._update_style

    def slow_restyle(*args):             # a point inside the handler's patch
        if threading.current_thread().name == "handler":
            handler_inside.set()
            handler_go.wait(5)
        return restyle(*args)
    table._update_style = slow_restyle

    def browser_sends(notes: list[str]) -> None:
        table._events = {"data": {"order_id": [1, 2], "notes": notes}}
        table._change_event(Document())

    browser = threading.Thread(target=browser_sends, args=(["Called", ""],))
    handler = threading.Thread(target=lambda: table.patch({"notes": [(0, "Called (saved)")]}), name="handler")
    browser.start()
    browser_inside.wait(5)
    handler.start()
    handler_inside.wait(0.5)             # as shipped it is inside now; with the fix it waits its turn
    browser_go.set()
    browser.join(5)
    handler_inside.wait(5)
    handler_go.set()
    handler.join(5)
    browser_sends(["Called again", ""])
    return table._updating, table.value["notes"].tolist()


def test_panel_alone_can_leave_a_table_ignoring_every_later_edit(tables_as_shipped):
    """The bug, shown on the installed Panel: if this starts failing, Panel fixed it and the patch can go."""
    assert edit_while_the_saved_row_is_patched_in() == (True, ["Called (saved)", ""])


def test_with_the_fix_the_next_edit_reaches_the_table(tables_as_shipped):
    upstream_fixes.one_thread_at_a_time_changes_a_table()
    upstream_fixes.one_thread_at_a_time_changes_a_table()               # applying twice wraps once
    assert not getattr(pn.widgets.Tabulator._patch.__wrapped__, "one_thread_at_a_time", False)
    assert edit_while_the_saved_row_is_patched_in() == (False, ["Called again", ""])


def every_reference(model) -> set[str]:
    """Bokeh's own walk, spelled out: every reference property read, set or not."""
    found, queue = set(), [model]
    while queue:
        current = queue.pop()
        if current.id in found:
            continue
        found.add(current.id)
        for name in current.properties_with_refs():
            model_util.visit_value_and_its_immediate_references(getattr(current, name), queue.append)
    return found


def test_the_faster_walk_finds_every_model_of_a_full_page(monkeypatch):
    """A page like a session's: charts from each workspace, a grid, Material widgets, chat answers."""
    monkeypatch.setattr(model_util, "visit_immediate_value_references", upstream_fixes.visit_references)
    frame = pd.DataFrame({"city": [f"City {i}" for i in range(12)], "viewers": range(12)})
    page = pmui.Page(main=[pn.Column(
        chart_pane(hv.Bars(frame, "city", "viewers")),
        pn.widgets.Tabulator(frame, pagination="remote", page_size=5, editors={"city": "input"}),
        pmui.MultiChoice(options=["Women", "Men"], label="Gender"), pmui.Button(label="Apply"),
        pmui.ChatInterface(objects=[pmui.ChatMessage(pn.Column("An answer", pn.pane.Bokeh(answer_chart(frame, "q"))),
                                                      user="Assistant")]),
    )])
    doc = Document()
    page.server_doc(doc)
    everything = set().union(*(every_reference(root) for root in doc.roots))
    models = [doc.get_model_by_id(i) for i in everything]
    assert len(models) > 100 and sum(isinstance(m, Plot) for m in models) == 2      # one of them in the chat
    for root in doc.roots:
        assert {m.id for m in root.references()} == every_reference(root)
    doc.models.recompute()
    assert {m.id for m in doc.models} == everything


# -- a value typed just before a click ------------------------------------------------------------

def click_right_after_typing(event_coroutine, monkeypatch) -> list[str]:
    """A text box holds a typed value Panel has not applied yet (its 50 ms debounce), applying it
    takes a moment, and Save is clicked: what the click handler reads, run through `event_coroutine`
    with a thread pool as the app has."""
    from functools import partial

    from bokeh.events import ButtonClick
    from panel.io.state import state

    pool = ThreadPoolExecutor(4)
    monkeypatch.setattr(state, "_thread_pool", pool)
    box, button = pn.widgets.TextInput(value="before"), pn.widgets.Button(label="Save")
    doc = Document()
    root = pn.Row(box, button).get_root(doc)
    read: list[str] = []
    button.on_click(lambda _: read.append(box.value))
    apply_values = box._process_events
    monkeypatch.setattr(box, "_process_events", lambda events: (threading.Event().wait(0.2), apply_values(events)))
    box._events = {"value": "typed"}
    state._change_callbacks[doc] = {"typed": partial(box._change_coroutine, doc, event_id="typed")}
    model = root.select_one({"type": type(button._models[root.ref["id"]][0])})
    run_async(lambda: event_coroutine(button, doc, ButtonClick(model)))   # a browser test may hold this thread's loop
    pool.shutdown(wait=True)
    return read


def test_panel_alone_lets_a_quick_click_read_the_old_value(monkeypatch):
    from panel.reactive import Syncable
    shipped = getattr(Syncable._event_coroutine, "__wrapped__", Syncable._event_coroutine)
    monkeypatch.setattr(Syncable, "_change_event", getattr(Syncable._change_event, "__wrapped__",
                                                           Syncable._change_event))
    assert click_right_after_typing(shipped, monkeypatch) == ["before"], "Panel fixed the race: drop the fix"


def test_with_the_fix_the_click_reads_what_was_typed(monkeypatch):
    from panel.reactive import Syncable
    upstream_fixes.values_before_events()
    assert click_right_after_typing(Syncable._event_coroutine, monkeypatch) == ["typed"]


# -- pages and the process-wide busy flag -----------------------------------------------------------

def test_a_material_page_is_not_bound_to_the_process_wide_busy_flag():
    from panel.io.state import state
    from panel.util import edit_readonly

    upstream_fixes.pages_not_bound_to_process_busy()
    page = pmui.Page(title="bound?")
    assert page._param__private.ref_watchers == []
    with edit_readonly(state):
        state.busy = True                 # another session's callback
    try:
        assert page.busy is False
    finally:
        with edit_readonly(state):
            state.busy = False


def test_every_fix_names_upstream_code_that_still_exists():
    with pytest.raises(RuntimeError, match="no longer has"):
        upstream_fixes.require(pn.widgets.TextInput, "a_method_panel_never_had")


# -- writes to a closed tab -----------------------------------------------------------------------

def test_a_write_lost_with_its_closed_tab_is_not_an_error_but_other_failures_still_are(caplog):
    import gc
    from concurrent.futures import ThreadPoolExecutor

    from tornado.websocket import WebSocketClosedError

    async def fails(exc):
        raise exc

    def on_a_loop_of_its_own():       # Playwright's sync API keeps a loop running in the test thread
        loop = asyncio.new_event_loop()
        upstream_fixes.quiet_writes_to_closed_tabs(loop)
        try:
            for exc in (WebSocketClosedError(), ValueError("a real bug")):
                task = loop.create_task(fails(exc))
                loop.run_until_complete(asyncio.sleep(0.01))
                del task                    # never awaited: asyncio reports it when collected
                gc.collect()
        finally:
            loop.close()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(on_a_loop_of_its_own).result(timeout=30)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "a real bug" in str(errors[0].exc_info[1])


# -- answers lost before the page said it was ready -------------------------------------------------

@pytest.fixture
def bare_server():
    """A Panel server in this process: a button that adds a line to a column when clicked."""
    from data.net import free_port

    def page():
        body = pn.Column(pn.pane.HTML("Nothing yet"))
        button = pn.widgets.Button(label="Answer")
        button.on_click(lambda _: body.append(pn.pane.HTML("Answered")))
        return pn.Column(button, body)
    port = free_port()
    server = pn.serve({"/": page}, port=port, address="127.0.0.1", show=False, threaded=True, start=True,
                      websocket_origin=[f"127.0.0.1:{port}"])
    try:
        assert eventually(lambda: listening(port), seconds=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def listening(port: int) -> bool:
    import socket
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def click_before_the_page_is_drawn(url: str) -> bool:
    """Fetch the document, click before reporting the page drawn (a person quicker than the
    browser's drawing): whether the answer arrives."""
    from .wire import NoUpdate, Session, _event

    async def scenario():
        session = await Session.open(url, ready=False)
        try:
            button = session.find("Button")
            await session.act([_event("button_click", {"model": button})], shows="Answered", timeout=3)
            return True
        except NoUpdate:
            return False
        finally:
            await session.close()
    return run_async(scenario)


@pytest.mark.skipif(tuple(map(int, pn.__version__.split(".")[:2])) >= (1, 10),
                    reason="Panel 1.10 keeps changes made before the page is drawn and sends them after")
def test_panel_alone_drops_the_answer_to_a_click_made_before_the_page_was_drawn(bare_server, monkeypatch):
    from bokeh.server.session import ServerSession
    monkeypatch.setattr(ServerSession, "_handle_pull", getattr(ServerSession._handle_pull, "shipped",
                                                               ServerSession._handle_pull))
    assert click_before_the_page_is_drawn(bare_server) is False, "Panel fixed it: drop the fix"


def test_with_the_fix_the_answer_to_an_early_click_arrives(bare_server):
    upstream_fixes.connected_once_the_document_is_fetched()
    assert click_before_the_page_is_drawn(bare_server) is True


def material_form():
    button, choice = pmui.Button(label="Save", color="primary"), pmui.Select(options=["a", "b"], value="b")
    return button, choice, pmui.Column(button, choice, pmui.Alert(object="Saved.", severity="success"))


@pytest.fixture
def reading_without_copies():
    upstream_fixes.parameters_read_without_copies()
    from param.parameterized import Parameters
    return Parameters


def test_panel_alone_copies_every_parameter_of_a_material_component_to_build_its_model(reading_without_copies,
                                                                                        monkeypatch):
    monkeypatch.setattr(reading_without_copies, "__getitem__", reading_without_copies.__getitem__.__wrapped__)
    button, _, form = material_form()
    form.get_root(Document())
    assert len(button._param__private.params) == len(list(button.param))


def test_building_a_material_model_copies_none_of_its_parameters_and_builds_the_same_model(reading_without_copies):
    button, choice, form = material_form()
    form.get_root(Document())
    copied = len(button._param__private.params)
    assert copied < len(list(button.param)) / 3, f"{copied} parameters copied to be read"
    [(button_model, _)] = button._models.values()
    [(choice_model, _)] = choice._models.values()
    assert (button_model.data.label, button_model.data.color) == ("Save", "primary")
    assert (choice_model.data.options, choice_model.data.value) == (["a", "b"], "b")
    [(alert_model, _)] = form[2]._models.values()
    assert "Saved." in alert_model.data.object and alert_model.data.severity == "success"


def test_a_parameter_read_outside_a_model_build_is_still_the_objects_own_copy(reading_without_copies):
    """Changing an object's parameter must change that object only: outside a build Param's copy
    is made as before, and a build reads it."""
    button, choice, form = material_form()
    choice.param["options"].doc = "changed for this object only"
    assert type(choice).param["options"].doc != "changed for this object only"
    form.get_root(Document())
    assert choice.param["options"].doc == "changed for this object only"
    choice.options = ["a", "b", "c"]
    [(choice_model, _)] = choice._models.values()
    assert choice_model.data.options == ["a", "b", "c"]


# -- patches that make a reference for every model ------------------------------------------------

def page_in_the_browser():
    """A document like a session's, every model of which the browser already has, and a recorder of
    the changes made to it from then on."""
    frame = pd.DataFrame({"city": [f"City {i}" for i in range(8)], "viewers": range(8)})
    column = pn.Column(*(pmui.Button(label=f"Button {i}") for i in range(30)),
                       pn.pane.Bokeh(answer_chart(frame, "Viewers by city")), pn.pane.HTML("Waiting…"))
    doc = Document()
    root = column.get_root(doc)
    doc.add_root(root)
    doc.models.flush_synced()
    events = []
    doc.on_change(events.append)
    return doc, column, root, events


def patch_content(events, create) -> dict:
    return create(patch_doc.patch_doc, events).content


def changes_to_a_page(new_message: bool = True):
    """The same changes each time: a text updated, and a new message added beside the existing models."""
    doc, column, root, events = page_in_the_browser()
    root.children[-1].text = "Answered."
    if not new_message:
        return doc, events
    message = pn.Column(pn.pane.HTML("A new answer"), pmui.Button(label="Ask next"))
    root.children = [*root.children, message.get_root(doc)]    # beside the models the browser has
    return doc, events


def test_a_patch_says_the_same_with_the_fix():
    upstream_fixes.patches_reference_only_the_models_they_meet()
    bokeh_create = patch_doc.patch_doc.create.__func__.__wrapped__
    ours = patch_doc.patch_doc.create.__func__
    doc, events = changes_to_a_page()
    still_new = set(doc.models._new_models)
    assert still_new, "the new message's models are new to the browser"
    theirs = patch_content(events, bokeh_create)
    doc.models._new_models = set(still_new)
    assert patch_content(events, ours) == theirs
    assert not doc.models._new_models, "once sent, the new models are the browser's"


def test_a_patch_makes_references_only_for_the_models_it_meets(monkeypatch):
    upstream_fixes.patches_reference_only_the_models_they_meet()
    made = []
    reference = Model.ref
    monkeypatch.setattr(Model, "ref", property(lambda self: made.append(self) or reference.fget(self)))

    def references_made(create) -> tuple[int, int]:
        doc, events = changes_to_a_page(new_message=False)          # a progress line, say
        made.clear()
        patch_content(events, create)
        return len(made), len(doc.models)
    bokeh_alone, on_the_page = references_made(patch_doc.patch_doc.create.__func__.__wrapped__)
    ours, _ = references_made(patch_doc.patch_doc.create.__func__)
    assert bokeh_alone >= on_the_page >= 100, "Bokeh alone makes one for every model of the page"
    assert ours <= 1, f"{ours} references made for a one-line change on a page of {on_the_page} models"


# -- defaults made for every model and read at every send ----------------------------------------

@pytest.fixture
def bokeh_as_shipped(monkeypatch):
    """Switch between Bokeh's own model building and serialising, and ours (on again afterwards);
    models are walked as the app walks them (`walk_only_properties_that_can_hold_models`)."""
    from bokeh.core.has_props import HasProps
    monkeypatch.setattr(model_util, "visit_immediate_value_references", upstream_fixes.visit_references)
    monkeypatch.setattr(document, "visit_immediate_value_references", upstream_fixes.visit_references)

    def use(fixed: bool) -> None:
        if fixed:
            upstream_fixes.empty_defaults_left_unset()
        else:
            HasProps.__init__ = upstream_fixes._BOKEH_INIT
            HasProps.query_properties_with_values = upstream_fixes._BOKEH_QUERY
    yield use
    use(True)


def a_session_like_page() -> Document:
    frame = pd.DataFrame({"city": [f"City {i}" for i in range(12)], "viewers": range(12)})
    page = pmui.Page(main=[pn.Column(
        pn.pane.HoloViews(hv.Bars(frame, "city", "viewers"), linked_axes=False),
        pn.widgets.Tabulator(frame, page_size=5, editors={"city": "input"}),
        pmui.MultiChoice(options=["Women", "Men"], label="Gender"), pmui.Button(label="Apply"),
        pmui.Alert(object="Saved."), pn.pane.Markdown("*Note*"),
        pmui.ChatInterface(objects=[pmui.ChatMessage(pn.Column("An answer", pn.pane.Bokeh(answer_chart(frame, "q"))),
                                                      user="Assistant", timestamp=datetime(2026, 12, 7, 9, 30))]),
    )])
    doc = Document()
    page.server_doc(doc)
    return doc


def sent(doc: Document) -> str:
    """The document as the browser receives it, with the ids and random names made comparable."""
    import re
    text = str(doc.to_json(deferred=False))
    text = re.sub(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", text)
    text = re.sub(r"\b([A-Za-z]+)\d{5}\b", r"\1<n>", text)          # Panel's names: Column00565
    ids: dict[str, str] = {}
    return re.sub(r"\bp\d{4,}\b", lambda m: ids.setdefault(m.group(0), f"<id {len(ids)}>"), text)


def defaults_kept(doc: Document) -> int:
    return sum(len(m._unstable_default_values) for m in doc.models)


def test_a_page_is_sent_the_same_with_fewer_defaults_made(bokeh_as_shipped):
    bokeh_as_shipped(False)
    theirs = a_session_like_page()
    theirs_sent, theirs_kept = sent(theirs), defaults_kept(theirs)
    bokeh_as_shipped(True)
    ours = a_session_like_page()
    assert sent(ours) == theirs_sent
    assert len(ours.models) == len(theirs.models) > 100
    assert defaults_kept(ours) < theirs_kept / 2, (defaults_kept(ours), theirs_kept)


def test_a_default_left_unset_is_made_when_read_and_its_changes_are_sent(bokeh_as_shipped):
    from bokeh.models import Range1d
    bokeh_as_shipped(True)
    model = Range1d()
    doc = Document()
    doc.add_root(model)
    assert "tags" not in model._unstable_default_values
    assert "tags" not in model.properties_with_values(include_defaults=False)
    changes = []
    doc.on_change(changes.append)
    model.tags.append("shown")
    assert model.tags == ["shown"]
    assert [(c.attr, c.new) for c in changes] == [("tags", ["shown"])]
    assert model.properties_with_values(include_defaults=False)["tags"] == ["shown"]
    assert model.properties_with_values(include_defaults=True)["js_event_callbacks"] == {}

