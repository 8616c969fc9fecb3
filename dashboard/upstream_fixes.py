"""Fixes for Panel and Bokeh bugs and slow paths our sessions hit; `apply()` runs once per process
(from `configure_panel`).

Lost page updates. Panel queues a change it cannot write at once (the socket is busy, or the change
came from another callback) and a task writes the queue. That task, once its writes are done, lifts
the queue's block without looking at the queue again; a change queued while it waited on the socket
is left there, and the next task, finding no block, returns. The change reaches the browser only with
the session's next update, if any: under load about one workspace switch in a hundred showed nothing.
Present in Panel 1.9.4 and 1.10.0 (`panel.io.document._dispatch_msgs`); the fix writes what is left.

Ignored cell edits. Panel marks a table busy with a plain flag while it updates the table's data
(save the flag, set it, restore it). Two threads doing so at once can leave it set for good: the
browser applying an edit and our handler patching the saved row back in, say. From then on Panel
drops every cell the browser sends for that table, and each later edit in the session showed
nothing (seen in the PostgreSQL restart fault test, twice in one CI run). Present in Panel 1.9.4
and 1.10.0 (`panel.util.updating`, `ReactiveData._process_data`); the fix lets one thread at a
time change a given table.

Values after the click that followed them. A browser sends a typed value, then the click on Save
right after it. Panel applies a value 50 ms later (its debounce) and a click at once, though it first
runs the values still waiting; with a thread pool "runs" only hands them to the pool, where the click
handler, in another thread, may read the old value: a quick click saved what the field held before
(3 of 12 quick clicks in an outside test) while the page said "saved". Present in Panel 1.9.4 and
1.10.0 (`Syncable._event_coroutine`); the fix applies the waiting values, and waits for ones being
applied, in the same task as the event, before it.

One busy flag for every page. A Material Page binds its busy flag to `pn.state.busy`, one flag for
the whole process: every callback in any session patched every session's page (two patches per
session, each walking that page's document), the binding kept ended sessions' pages alive, and a
callback of another session flipping the flag while a page was being built tried to set the page's
read-only flag ("Read-only parameter 'busy' cannot be modified"). The Page module sees a `state`
whose `param.busy` is plain False, so no page is ever bound.

Writes to a closed tab. Panel writes a patch as a few websocket frames, each a future it awaits
later; when the browser's tab closes meanwhile and Panel drops the session's pending writes, the
failed futures are never awaited and asyncio logs "Task exception was never retrieved" with a
traceback for what is a normal event (a tab closed while its charts were on their way). Present in
Panel 1.9.4 and 1.10.0 (`panel.io.document.dispatch_tornado`: the first frame's write fails later,
the second raises at once, and the first is lost with the exception). The server's event loop
treats such a failure as the closed tab it is (`quiet_writes_to_closed_tabs`).

Bokeh's own log handler. Imported before our logging is set up (in the workers' preloaded parent),
Bokeh attaches a stderr handler to its logger that bypasses our format and the masking of secrets;
`bokeh_logs_through_ours` removes it in each worker.

Answers lost before the page said it was ready. Panel counts a session as connected only once
the browser reports its page drawn (`document_ready`), and drops every change made before then,
expecting the document to be sent whole when the browser connects. But the browser fetched the
document before drawing it, and people click while the rest is still drawing: the answer to such a
click (the order form's History tab, opened from a link, clicked at once) was dropped, so the tab
looked chosen and nothing came. Present in Panel 1.9.4 (`panel.io.document.hold`); Panel 1.10
keeps such changes and sends them once the page is drawn (`_dispatch_unconnected_events`), where
this fix is harmless. The fix counts the session connected from the moment the browser fetches
the document, so what changes after that is sent to it.

Parameter copies made to be read. Param gives each object its own copy of a parameter the first
time `obj.param[name]` is read, so that changing it changes that object only. Panel reads every
parameter that way whenever it builds or updates a Material (ESM) component's model, only to look
at its type and precedence: each of the page's components copied all of its parameters (42 for a
button), a quarter of the memory its model costs and a third of the time to build it (measured:
206 against 156 KB and 41 against 29 ms for a column of four Material widgets). Present in Panel
1.9.4 and 1.10.0 (`ReactiveESM._get_properties`, `_get_children`); while Panel builds an object's
model, that object's parameters are read without copying (one already copied is still the one read).

Two workarounds that are not patches live here too, so every answer to an upstream bug is in one
place: `typed_cell_value` (a table's edit event handled before the cell's new data has landed)
and `after_message_drawn` (a Bokeh figure added to a Material chat message the browser is still
building fails to lay out: panel-material-ui issue #548).

Slow model walks. Whenever models join or leave a page, Bokeh walks every model of the document to
find them all again, reading each reference property; an unset property with a fixed default is
rebuilt and validated at each read, though such a default can never hold a model (models are only
ever instance defaults, which Bokeh keeps per object). On a session with every workspace open (450
models) a walk took 59 ms, several times per assistant answer; skipping those defaults, and taking
instance defaults from Bokeh's store, halves it.

Defaults made for every model and read at every send. Bokeh makes, for every new model, each of
its list, dict and set defaults (`tags`, `js_event_callbacks`, `styles`, …; 4–7 a model, each with a
wrapper and a set of owners), and reads every property of a model each time it serialises it, only
to drop those defaults and every other unset property afterwards. Half of a session's serialising
time went to that, and a sixth of its memory to the empty containers. Present in Bokeh 3.9.2 and
3.10.2 (`HasProps.__init__`, `query_properties_with_values`); the fix leaves an empty container
default unset until something reads it and, for what is sent, reads only what will be sent. The
documents sent are the same, byte for byte.

Patches that make a reference for every model. Every change Bokeh sends (a PATCH-DOC message) starts
by making a reference object for each model of the document already in the browser, to tell which
models the change may name rather than send: 500 of them for a one-line progress update on a full
session page. Present in Bokeh 3.9.2 and 3.10.2 (`patch_doc.create`); the fix asks the document,
for each model the change meets, whether the browser has it.
"""
from __future__ import annotations

import asyncio
import functools
import importlib
import logging
import threading
import time
from typing import Callable

from bokeh.core.has_props import HasProps, Intrinsic
from bokeh.core.property.container import ContainerProperty
from bokeh.core.property.singletons import Undefined
from bokeh.core.property.wrappers import PropertyValueContainer
from bokeh.core.serialization import Serializer
from bokeh.document import Document
from bokeh.model import Model
from bokeh.model import util as model_util
from bokeh.server import session as bokeh_session
from panel.custom import ReactiveESM
from panel.io import document
from panel.io.state import state as panel_state
from panel.reactive import Syncable
from panel.widgets import Tabulator
from panel_material_ui.template import base as material_page
from param.parameterized import Parameters

patch_doc = importlib.import_module("bokeh.protocol.messages.patch_doc")  # the package's name is the class
_QUEUE = "_WRITE_MSGS" if hasattr(document, "_WRITE_MSGS") else "_WRITE_EVENTS"     # 1.9 / 1.10


def apply() -> None:
    connected_once_the_document_is_fetched()
    values_before_events()
    write_everything_queued()
    one_thread_at_a_time_changes_a_table()
    walk_only_properties_that_can_hold_models()
    empty_defaults_left_unset()
    pages_not_bound_to_process_busy()
    parameters_read_without_copies()
    patches_reference_only_the_models_they_meet()


def require(owner, *names: str) -> None:
    """Each patched name must still exist upstream: an upgrade that moved one fails loudly here
    instead of silently skipping a fix."""
    missing = [n for n in names if not hasattr(owner, n)]
    if missing:
        raise RuntimeError(f"upstream_fixes: {getattr(owner, '__name__', owner)} no longer has {', '.join(missing)}; "
                           "check whether the fix is still needed")


# -- answers lost before the page said it was ready ----------------------------------------------

def connected_once_the_document_is_fetched(cls: type = bokeh_session.ServerSession) -> None:
    """Mark a session connected (for Panel) when its browser fetches the document, under the same
    document lock as the fetch: a change made before it is in what is fetched, one made after it
    is sent as an update (idempotent)."""
    require(cls, "_handle_pull")
    require(bokeh_session, "_needs_document_lock")
    require(panel_state, "_connected")
    if getattr(cls._handle_pull, "marks_connected", False):
        return
    fetch = cls._handle_pull.__wrapped__             # the body, without the lock taken around it

    def fetch_and_connect(self, message, connection):
        panel_state._connected[self.document] = True
        return fetch(self, message, connection)

    locked = bokeh_session._needs_document_lock(fetch_and_connect)
    locked.marks_connected, locked.shipped = True, cls._handle_pull
    cls._handle_pull = locked


# -- values after the click that followed them ----------------------------------------------------

_APPLYING: dict = {}                     # document -> value changes being applied now (any thread)
_APPLYING_CHANGED = threading.Condition()
VALUE_WAIT = 2.0                         # seconds an event waits for values being applied


def _counted_change_event(change_event):
    @functools.wraps(change_event)
    def change_event_counted(self, doc):
        with _APPLYING_CHANGED:
            _APPLYING[doc] = _APPLYING.get(doc, 0) + 1
        try:
            return change_event(self, doc)
        finally:
            with _APPLYING_CHANGED:
                _APPLYING[doc] -= 1
                if not _APPLYING[doc]:
                    del _APPLYING[doc]
                _APPLYING_CHANGED.notify_all()
    change_event_counted.counted = True
    return change_event_counted


def _wait_for_values(doc, timeout: float = VALUE_WAIT) -> None:
    with _APPLYING_CHANGED:
        _APPLYING_CHANGED.wait_for(lambda: not _APPLYING.get(doc), timeout)


def values_before_events(cls: type = Syncable) -> None:
    """With a thread pool, apply the values waiting for a document, and wait for those being
    applied, before an event of that document is handled, in the event's own task (idempotent)."""
    require(cls, "_event_coroutine", "_change_event", "_process_bokeh_event")
    require(panel_state, "_change_callbacks", "_thread_pool", "_handle_exception", "_handle_future_exception")
    if getattr(cls._event_coroutine, "values_first", False):
        return
    cls._change_event = _counted_change_event(cls._change_event)
    shipped = cls._event_coroutine

    @functools.wraps(shipped)
    async def values_then_event(self, doc, event):
        if not panel_state._thread_pool:
            return await shipped(self, doc, event)        # one thread: Panel's own order holds
        waiting = panel_state._change_callbacks.pop(doc, {})
        changed = [callback.func.__self__ for callback in waiting.values()]   # partial(obj._change_coroutine, ...)

        def values_then_handle():
            _wait_for_values(doc)
            for obj in changed:
                try:
                    obj._change_event(doc)
                except Exception as exc:  # one failed value must not drop the click
                    panel_state._handle_exception(exc)
            self._process_bokeh_event(doc, event)

        future = panel_state._thread_pool.submit(values_then_handle)
        future.add_done_callback(functools.partial(panel_state._handle_future_exception, doc=doc))

    values_then_event.values_first = True
    cls._event_coroutine = values_then_event


# -- Material pages and the process-wide busy flag -------------------------------------------------

class _StateWithoutBusy:
    """Panel's `state` as the Material Page module sees it, but for `param.busy`, which is False."""

    def __init__(self, real):
        self._real = real
        self.param = _ParametersWithoutBusy(real.param)

    def __getattr__(self, name):
        return getattr(self._real, name)


class _ParametersWithoutBusy:
    busy = False

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)


def pages_not_bound_to_process_busy() -> None:
    require(material_page, "state", "Page")
    if not isinstance(material_page.state, _StateWithoutBusy):
        material_page.state = _StateWithoutBusy(material_page.state)


# -- lost page updates ----------------------------------------------------------------------------

def _queued_writes(doc) -> bool:
    """Whether changes for `doc` wait in Panel's write queue."""
    return bool(getattr(document, _QUEUE).get(doc))


def write_everything_queued() -> None:
    """Make each write task finish only when nothing is left in the queue (idempotent)."""
    require(document, "_dispatch_msgs", "_dispatch_write_task", "_WRITE_BLOCK", _QUEUE)
    dispatch = document._dispatch_msgs
    if getattr(dispatch, "writes_everything", False):
        return

    @functools.wraps(dispatch)
    async def dispatch_until_empty(doc):
        await dispatch(doc)
        if doc not in document._WRITE_BLOCK and _queued_writes(doc):
            document._WRITE_BLOCK[doc] = True
            document._dispatch_write_task(doc, document._dispatch_msgs, doc)

    dispatch_until_empty.writes_everything = True
    document._dispatch_msgs = dispatch_until_empty


# -- writes to a closed tab ----------------------------------------------------------------------

def quiet_writes_to_closed_tabs(loop: asyncio.AbstractEventLoop) -> None:
    """On `loop` (the server's), a write that failed because its tab had closed is one debug line,
    not an error with a traceback; every other unhandled exception is reported as before."""
    from tornado.iostream import StreamClosedError
    from tornado.websocket import WebSocketClosedError

    def handle(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if isinstance(context.get("exception"), (WebSocketClosedError, StreamClosedError)):
            logging.getLogger(__name__).debug("a write to a closed tab was dropped")
            return
        loop.default_exception_handler(context)
    loop.set_exception_handler(handle)


# -- Bokeh's own log handler ---------------------------------------------------------------------

def bokeh_logs_through_ours() -> None:
    """Bokeh, imported before our logging was set up (by the workers' preloaded parent), gave its
    logger a stderr handler of its own that bypasses our format and the masking of secrets: remove
    it, so Bokeh's lines go through ours (idempotent)."""
    from bokeh.util import logconfig
    require(logconfig, "default_handler", "bokeh_logger")
    if logconfig.default_handler is not None:
        logconfig.bokeh_logger.removeHandler(logconfig.default_handler)
        logconfig.bokeh_logger.propagate = True
        logconfig.default_handler = None


# -- ignored cell edits ---------------------------------------------------------------------------

# What sets or reads the busy flag: data from the browser, and the server's own updates.
_TABLE_UPDATES = ("_change_event", "_update_cds", "_update_selected", "_patch", "_stream")
_NEW_LOCK = threading.Lock()


def _lock_of(table) -> threading.RLock:
    lock = table.__dict__.get("_one_thread_at_a_time")
    if lock is None:
        with _NEW_LOCK:
            lock = table.__dict__.setdefault("_one_thread_at_a_time", threading.RLock())
    return lock


def one_thread_at_a_time_changes_a_table(cls: type = Tabulator) -> None:
    """Serialise each table's data updates on a lock of its own (idempotent). Re-entrant: an update
    may start another (new data from the browser re-reads a page, which sets the table's value)."""
    require(cls, *_TABLE_UPDATES)
    for name in _TABLE_UPDATES:
        update = getattr(cls, name)
        if getattr(update, "one_thread_at_a_time", False):
            continue

        @functools.wraps(update)
        def serialised(self, *args, _update=update, **kwargs):
            with _lock_of(self):
                return _update(self, *args, **kwargs)

        serialised.one_thread_at_a_time = True
        setattr(cls, name, serialised)


# -- workarounds that are not patches ---------------------------------------------------------------

CELL_VALUE_WAIT = 2.0       # seconds a table's edit handler waits for the cell's new data
MESSAGE_LAYOUT_PAUSE = 0.4  # seconds the browser needs to lay out a new chat message


def typed_cell_value(read: Callable[[], tuple[object, object]], same: Callable[[object, object], bool],
                     wait: float = CELL_VALUE_WAIT):
    """The value an edited cell now holds. With a thread pool Panel can run a table's edit handler
    before the cell's new data has arrived (Panel 1.9 and 1.10): `read()` gives the cell's data and
    what the table last sent there; on a worker thread, wait until they differ (at most `wait`
    seconds); on the main thread the data is there."""
    deadline = time.monotonic() + wait
    while True:
        value, sent = read()
        if not same(value, sent) or threading.current_thread() is threading.main_thread() \
                or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


async def after_message_drawn(sent_at: float | None = None) -> None:
    """Wait until the browser has laid out the chat message just sent (at `sent_at`, the event
    loop's time; now when not given): a figure added while it does, or a message changed while it
    draws one, fails to lay out ("reading 'top_panel'", panel-material-ui issue #548, open). A
    pause, not a fix: no event says the layout is done."""
    waited = 0.0 if sent_at is None else asyncio.get_running_loop().time() - sent_at
    await asyncio.sleep(max(0.0, MESSAGE_LAYOUT_PAUSE - waited))


# -- slow model walks -----------------------------------------------------------------------------

@functools.cache
def _reference_properties(cls: type[HasProps]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The class's properties that may refer to models, and those of them worth reading when unset
    (an instance default, kept per object: the only kind of default that can be a model)."""
    names = tuple(cls.properties_with_refs())
    return names, frozenset(n for n in names if cls.lookup(n).has_unstable_default(cls))


def visit_references(value, visitor) -> None:
    """`bokeh.model.util.visit_immediate_value_references`, without reading fixed defaults."""
    if not isinstance(value, HasProps):
        model_util.visit_value_and_its_immediate_references(value, visitor)
        return
    names, read_when_unset = _reference_properties(type(value))
    assigned = value._property_values
    for name in names:
        if name in assigned:
            child = assigned[name]
        elif name in read_when_unset:
            child = _instance_default(value, name)
        else:
            continue
        model_util.visit_value_and_its_immediate_references(child, visitor)


def _instance_default(value: HasProps, name: str):
    """What reading the unset property returns, from Bokeh's per-object store of instance defaults
    when it is there (reading the property would ask the theme first, which costs as much)."""
    for store in (value._unstable_themed_values, value._unstable_default_values):
        if name in store:
            return store[name]
    if name in _container_properties(type(value)):
        return None                   # an empty container left unset (`empty_defaults_left_unset`)
    return getattr(value, name)


def walk_only_properties_that_can_hold_models() -> None:
    require(model_util, "visit_immediate_value_references", "visit_value_and_its_immediate_references")
    require(document, "visit_immediate_value_references")
    from bokeh.models import Range1d
    require(HasProps, "properties_with_refs", "lookup")
    require(Range1d(), "_property_values", "_unstable_default_values", "_unstable_themed_values")
    model_util.visit_immediate_value_references = visit_references       # collect_models, Model.references
    document.visit_immediate_value_references = visit_references         # Panel's freeze_doc


# -- empty defaults made for every model ---------------------------------------------------------

@functools.cache
def _container_properties(cls: type[HasProps]) -> frozenset[str]:
    """The class's properties whose default is a fresh list, dict or set for each object."""
    return frozenset(name for name in cls.properties(_with_props=True)
                     if isinstance(cls.lookup(name).property, ContainerProperty)
                     and cls.lookup(name).has_unstable_default(cls))


def _init_leaving_empty_defaults_unset(self, **properties) -> None:
    """`HasProps.__init__`, except that a container property left at an empty default stays unset:
    Bokeh makes it, with a wrapper and a set of owners, at once for every object, and then sends it
    to the browser, whose own default is the same empty container. Read later, it is made then."""
    super(HasProps, self).__init__()
    self._property_values = {}
    self._unstable_default_values = {}
    self._unstable_themed_values = {}
    for name, value in properties.items():
        if value is Undefined or value is Intrinsic:
            continue
        setattr(self, name, value)
    containers = _container_properties(type(self)) if self.themed_values() is None else frozenset()
    for name in self.properties(_with_props=True):
        if name in properties:
            continue
        descriptor = self.lookup(name)
        if name in containers:
            default = descriptor.instance_default(self)
            if isinstance(default, PropertyValueContainer):
                if not default:
                    continue
                default._register_owner(self, descriptor)
            self._unstable_default_values[name] = default
        elif descriptor.has_unstable_default(self):
            descriptor._get(self)           # an instance default (a model): made now, as Bokeh does
    self._initialized = True


def _serialized_values(self, query, *, include_defaults: bool = True, include_undefined: bool = False) -> dict:
    """`HasProps.query_properties_with_values`, reading only what it returns when defaults are left
    out (what Bokeh sends): Bokeh reads every property of the model first, making and validating
    each default, and then drops the ones it did not select."""
    if include_defaults or include_undefined:     # every property asked for: Bokeh's own
        return _BOKEH_QUERY(self, query, include_defaults=include_defaults, include_undefined=include_undefined)
    themed = self.themed_values() or {}
    selected = {*self._property_values, *themed,
                *(k for k, v in self._unstable_default_values.items() if not isinstance(v, PropertyValueContainer))}
    result = {}
    for key in self.properties(_with_props=True):
        if key in selected:
            descriptor = self.lookup(key)
            if query(descriptor):
                result[key] = descriptor.get_value(self)
    return result


_BOKEH_INIT, _BOKEH_QUERY = HasProps.__init__, HasProps.query_properties_with_values


def empty_defaults_left_unset() -> None:
    require(HasProps, "__init__", "properties", "lookup", "themed_values", "query_properties_with_values")
    body = HasProps.__init__.__code__
    if body is _init_leaving_empty_defaults_unset.__code__:
        return
    if not {"has_unstable_default", "_get", "_initialized"} <= set(body.co_names):
        raise RuntimeError("upstream_fixes: HasProps.__init__ changed; check empty_defaults_left_unset")
    if "_unstable_default_values" not in _BOKEH_QUERY.__code__.co_names:
        raise RuntimeError("upstream_fixes: HasProps.query_properties_with_values changed; check it")
    HasProps.__init__ = _init_leaving_empty_defaults_unset
    HasProps.query_properties_with_values = _serialized_values


# -- parameter copies made to be read -------------------------------------------------------------

_BUILDING = threading.local()           # .model_of: the object whose model this thread is building


def parameters_read_without_copies() -> None:
    require(ReactiveESM, "_get_properties", "_get_children")
    if getattr(Parameters.__getitem__, "reads_without_copies", False):
        return
    copying_getitem = Parameters.__getitem__

    @functools.wraps(copying_getitem)
    def getitem(self_, key):
        owner = self_.self
        if owner is not None and owner is getattr(_BUILDING, "model_of", None):
            return owner._param__private.params.get(key) or self_.objects(instance=False)[key]
        return copying_getitem(self_, key)
    getitem.reads_without_copies = True
    Parameters.__getitem__ = getitem
    for name in ("_get_properties", "_get_children"):
        setattr(ReactiveESM, name, _building_model_of_self(getattr(ReactiveESM, name)))


def _building_model_of_self(method):
    """Run `method` with its object's parameters read without copies (a child built meanwhile
    takes its own turn, and the object's turn comes back after it)."""
    @functools.wraps(method)
    def building(self, *args, **kwargs):
        outer = getattr(_BUILDING, "model_of", None)
        _BUILDING.model_of = self
        try:
            return method(self, *args, **kwargs)
        finally:
            _BUILDING.model_of = outer
    return building


# -- patches that make a reference for every model ------------------------------------------------

class SyncedModelsSerializer(Serializer):
    """Bokeh's serializer for a patch, taking a model the browser already has as a reference when
    the patch meets it, instead of making one for every model of the document first."""

    def __init__(self, document: Document, **options):
        super().__init__(**options)
        self._document_models = document.models

    def _in_browser(self, obj) -> bool:
        models = self._document_models
        return isinstance(obj, Model) and models.get_by_id(obj.id) is obj and obj not in models._new_models

    def has_ref(self, obj) -> bool:
        return super().has_ref(obj) or self._in_browser(obj)

    def get_ref(self, obj):
        ref = super().get_ref(obj)
        if ref is None and self._in_browser(obj):
            ref = self._references[id(obj)] = obj.ref
        return ref


def patches_reference_only_the_models_they_meet() -> None:
    require(Document().models, "get_by_id", "flush_synced", "_new_models")
    require(Serializer(), "_references", "encode", "buffers")
    require(patch_doc.patch_doc, "create", "create_header", "add_buffers")
    if getattr(patch_doc.patch_doc.create, "references_only_models_met", False):
        return

    @functools.wraps(patch_doc.patch_doc.create.__func__)
    def create(cls, events, **metadata):
        """`patch_doc.create` as Bokeh has it, with `SyncedModelsSerializer`."""
        header = cls.create_header()
        if not events:
            raise ValueError("PATCH-DOC message requires at least one event")
        documents = {event.document for event in events}
        if len(documents) != 1:
            raise ValueError("PATCH-DOC message configured with events for more than one document")
        [doc] = documents
        serializer = SyncedModelsSerializer(doc)
        patch_json = patch_doc.PatchJson(events=serializer.encode(events))
        doc.models.flush_synced(lambda model: not serializer.has_ref(model))
        message = cls(header, metadata, patch_json)
        message.add_buffers(*serializer.buffers)
        return message
    create.references_only_models_met = True
    patch_doc.patch_doc.create = classmethod(create)
