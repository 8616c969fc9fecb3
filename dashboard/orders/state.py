"""What a user chose in the Orders workspace, what they are allowed to do, and the writes they ask for."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import urlencode

import pandas as pd
import param

from data.changes import ANYTHING, ChangeFeed, Changes
from data.orders import Orders
from data.paging import Page, PageQuery

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

    LINK = {"tab": "tab", "order": "order", "search": "q"}      # parameter -> the link's argument

    def __init__(self, app: AppState, orders: Orders, feed: ChangeFeed | None = None, **params):
        super().__init__(app=app, **params)
        self.orders = orders
        self._unsubscribe = None
        self._feed = feed
        if feed is not None:
            self._follow(feed)

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
        self._unsubscribe = follow(feed, lambda version: self.param.update(version=version))

    def feed_version(self) -> int:
        return self._feed.version if self._feed is not None else 0

    def changes_since(self, version: int) -> Changes:
        """Which orders the change feed named after `version`."""
        return self._feed.changes_since(version) if self._feed is not None else ANYTHING

    def open_batch(self, batch_id: str) -> None:
        """Show a batch in Import & export, where it can be undone (from an order's history)."""
        self.param.update(order=None, tab="import", batch=batch_id)

    def stop_following(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

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
