"""What a user chose in the Orders workspace, what they are allowed to do, and the writes they ask for."""
from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import urlencode

import pandas as pd
import panel as pn
import param

from data.changes import ANYTHING, ChangeFeed, Changes
from data.orders import Orders
from data.paging import Page, PageQuery
from data.presence import Here, Presence

from ..state import AppState, follow

TABS = ("orders", "today", "import")
TIME_COLUMNS = ("created_at", "modified_at", "changed_at")


class OrdersState(param.Parameterized):
    app = param.ClassSelector(class_=AppState, doc="The session's shared state (signed-in user).")
    tab = param.Selector(default="orders", objects=list(TABS), doc="Grid, today's analytics, or CSV import.")
    search = param.String(default="", doc="Free text: a customer's name or e-mail, or #order number.")
    filters = param.Parameter(default=(), doc="The grid's column filters, as the data layer takes them.")
    order = param.Integer(default=None, allow_None=True, doc="The order open in the form (the link's ?order=).")
    batch = param.String(default=None, allow_None=True, doc="The batch chosen in Import & export, to undo.")
    version = param.Integer(default=0, doc="Bumped when orders change anywhere (LISTEN/NOTIFY).")
    saved = param.Event(doc="This session saved a change (views re-read at once).")
    presence_version = param.Integer(default=0, doc="Bumped when anyone opens, edits or leaves an order.")

    LINK = {"tab": "tab", "order": "order", "search": "q"}      # parameter -> the link's argument

    def __init__(self, app: AppState, orders: Orders, feed: ChangeFeed | None = None,
                 presence: Presence | None = None, **params):
        super().__init__(app=app, **params)
        self.orders = orders
        self._stops: list = []                   # what stop_following undoes
        self._feed = feed
        self._presence = presence
        self._places: set[str] = set()           # where this session told others it is (nothing to leave otherwise)
        self.session = uuid.uuid4().hex          # how others' screens tell this session from the user's others
        if feed is not None:
            self._follow(feed)
        if presence is not None:
            self._follow_presence(presence)

    @contextmanager
    def writing(self, *, reread: bool = True):
        """Around this session's own write: after one that succeeded, views re-read (unless the
        caller shows the new values itself). News of it from the change feed is not news: the grid
        tells others' changes by who made them."""
        yield
        if reread:
            self.param.trigger("saved")

    @property
    def can_edit(self) -> bool:
        return self.orders.policy.can_edit(self.app.user)

    @property
    def user(self) -> str:
        return self.app.user

    def _follow(self, feed: ChangeFeed) -> None:
        """Re-read when anyone commits a change."""
        self._stops.append(follow(feed, lambda version: self.param.update(version=version)))

    def _follow_presence(self, presence: Presence) -> None:
        """Others see where this session is: the order whose form is open (from the link too);
        it leaves when the session closes."""
        if presence.feed is not None:
            self._stops.append(follow(presence.feed, lambda version: self.param.update(presence_version=version)))
        self.param.watch(lambda e: self.be_at(e.new, "form") if e.new else self.leave("form"), "order")
        if self.order:
            self.be_at(self.order, "form")
        self._stops.append(self.leave)
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.on_session_destroyed(lambda _context: self.leave())

    def be_at(self, order_id: int, place: str, fields: tuple[str, ...] = (), for_seconds: float | None = None) -> None:
        """Tell others this session is at the order: its form ("form"), or a cell of its row ("grid")."""
        if self._presence is not None:
            self._places.add(place)
            self._presence.be_at(self.session, self.user, order_id, place, fields, for_seconds)

    def leave(self, place: str | None = None) -> None:
        """Leave the place (every place when None); no write when this session was not there."""
        leaving = self._places if place is None else self._places & {place}
        if self._presence is not None and leaving:
            self._places -= leaving
            self._presence.leave(self.session, place)

    def others_at(self, order_ids) -> list[Here]:
        """The other sessions (this user's other tabs too) at any of these orders now."""
        if self._presence is None:
            return []
        wanted = set(order_ids)
        return [h for h in self._presence.everyone() if h.order_id in wanted and h.session != self.session]

    def who_else_is_at(self, order_ids, *, one_order: bool = False) -> str:
        """Who else is at these orders doing what, one sentence per person and order, e.g.
        'ana@example.com is editing #4974 notes' ('ana@example.com is editing notes' with
        `one_order`, where the order is the one on screen)."""
        def sentence(h: Here) -> str:
            order = "" if one_order else f"#{h.order_id} "
            if h.fields:
                return f"{h.user} is editing {order}{', '.join(f.replace('_', ' ') for f in h.fields)}"
            return f"{h.user} has this order open too" if one_order else f"{h.user} has #{h.order_id} open"
        return "; ".join(sorted({sentence(h) for h in self.others_at(order_ids)}))

    def feed_version(self) -> int:
        return self._feed.version if self._feed is not None else 0

    def changes_since(self, version: int) -> Changes:
        """Which orders the change feed named after `version`."""
        return self._feed.changes_since(version) if self._feed is not None else ANYTHING

    def open_batch(self, batch_id: str) -> None:
        """Show a batch in Import & export, where it can be undone (from an order's history)."""
        self.param.update(order=None, tab="import", batch=batch_id)

    def stop_following(self) -> None:
        """Stop reacting to others and leave every order (the session ends)."""
        while self._stops:
            self._stops.pop()()

    # -- reads ----------------------------------------------------------------------------

    def page(self, query: PageQuery) -> Page:
        query = replace(query, filters=tuple(sorted({**dict(query.filters)}.items())))
        self.filters = query.filters
        page = self.orders.page(query, self.search)
        page.rows = self.local_times(page.rows)
        return page

    @param.depends("version")
    def today(self) -> dict:
        """Today's figures (read again whenever any order changes)."""
        return self.orders.today()

    def local_times(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Timestamps in the business time zone, without the zone suffix, for display."""
        frame = frame.copy()
        for column in TIME_COLUMNS:
            if column in frame and len(frame):
                frame[column] = pd.to_datetime(frame[column], utc=True).dt.tz_convert(
                    self.orders.timezone).dt.tz_localize(None)
        return frame

    def export_link(self) -> str:
        """The streamed CSV of every order matching the grid's search and filters."""
        query = {"search": self.search} if self.search else {}
        if self.filters:
            query["filters"] = json.dumps([[name, value] for name, value in self.filters], default=str)
        return "orders/export.csv" + (f"?{urlencode(query)}" if query else "")
