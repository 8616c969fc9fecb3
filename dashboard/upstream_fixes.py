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

One busy flag for every page. A Material Page's busy flag is bound to `pn.state.busy`, one flag for
the whole process: every callback in any session patched every session's page. Each page is cut
loose from it (`detach_from_process_busy`).

Slow model walks. Whenever models join or leave a page, Bokeh walks every model of the document to
find them all again, reading each reference property; an unset property with a fixed default is
rebuilt and validated at each read, though such a default can never hold a model (models are only
ever instance defaults, which Bokeh keeps per object). On a session with every workspace open (450
models) a walk took 59 ms, several times per assistant answer; skipping those defaults, and taking
instance defaults from Bokeh's store, halves it.
"""
from __future__ import annotations

import functools
import threading

from bokeh.core.has_props import HasProps
from bokeh.model import util as model_util
from panel.io import document
from panel.widgets import Tabulator

_QUEUE = "_WRITE_MSGS" if hasattr(document, "_WRITE_MSGS") else "_WRITE_EVENTS"     # 1.9 / 1.10


def apply() -> None:
    write_everything_queued()
    one_thread_at_a_time_changes_a_table()
    walk_only_properties_that_can_hold_models()


# -- lost page updates ----------------------------------------------------------------------------

def _queued_writes(doc) -> bool:
    """Whether changes for `doc` wait in Panel's write queue."""
    return bool(getattr(document, _QUEUE).get(doc))


def write_everything_queued() -> None:
    """Make each write task finish only when nothing is left in the queue (idempotent)."""
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


# -- one busy flag for every page -----------------------------------------------------------------

def detach_from_process_busy(page):
    """Cut the Page's busy flag loose from `pn.state.busy`, which is one flag for the whole process.

    Bound to it, every callback in any session flipped the flag on every session's page: two
    patches per session, each walking that page's whole document, so the cost of one click grew
    with the number of people connected. And the binding is a watcher on the process-wide state
    that keeps each page, with its session's views, alive after the session has ended."""
    private = page._param__private                 # param keeps reference watchers only here
    for _names, watcher in private.ref_watchers:
        watcher.inst.param.unwatch(watcher)
    private.ref_watchers = []
    private.refs.pop("busy", None)
    return page


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
    return getattr(value, name)


def walk_only_properties_that_can_hold_models() -> None:
    model_util.visit_immediate_value_references = visit_references       # collect_models, Model.references
    document.visit_immediate_value_references = visit_references         # Panel's freeze_doc
