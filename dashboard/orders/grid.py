"""The orders grid: one SQL page at a time, inline edits, conflicts, bulk status changes."""
from __future__ import annotations

import logging
import time

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from bokeh.models.widgets.tables import DateFormatter, NumberFormatter

from data.errors import AppError
from data.order_rules import STATUSES, TRANSITIONS, Edit
from data.orders import BulkRefused, OrderConflict

from .. import format as fmt
from ..markup import HTML, alert
from ..widgets import CARD_CSS, SqlTable, outcome_alerts, refusals_html
from .conflict import ConflictChooser
from .state import OrdersState

TITLES = {"order_id": "Order", "customer": "Customer", "email": "E-mail", "status": "Status", "total": "Total",
          "items": "Items", "discount": "Discount", "shipping_fee": "Shipping", "shipping_address": "Ship to",
          "notes": "Notes", "created_at": "Created", "modified_at": "Modified", "modified_by": "Modified by",
          }
EDITORS = {
    # Each row offers only the statuses its current status may move to.
    "status": {"type": "nested", "options": {s: [s, *TRANSITIONS[s]] for s in STATUSES}, "lookup_order": ["status"]},
    "discount": {"type": "number", "min": 0, "step": 0.01},
    "shipping_fee": {"type": "number", "min": 0, "step": 0.01},
    "shipping_address": "input", "notes": "input", "customer": "input", "email": "input",
    "order_id": None, "total": None, "items": None, "created_at": None, "modified_at": None, "modified_by": None,
    "version": None,
}
HEADER_FILTERS = {
    "order_id": {"type": "input", "placeholder": "e.g. >1000"},
    "customer": {"type": "input", "func": "like", "placeholder": "contains…"},
    "email": {"type": "input", "func": "like", "placeholder": "contains…"},
    "status": {"type": "list", "func": "in", "values": list(STATUSES), "multiselect": True,
               "placeholder": "any"},
    "total": {"type": "input", "placeholder": "e.g. 50..100"},
    "items": {"type": "input", "placeholder": "e.g. >3"},
    "created_at": {"type": "input", "placeholder": "today, 2026-11-20, >2026-11-01"},
    "modified_at": {"type": "input", "placeholder": "today, >2026-11-01"},
    "modified_by": {"type": "input", "func": "like", "placeholder": "contains…"},
}
MONEY = NumberFormatter(format="$0,0.00")
# Order numbers look like links (a click opens the form): Tabulator's own number formatter ("#4956")
# and a style, not an HTML template (the browser would compile it; the page's policy forbids that).
ORDER_NUMBER = {"type": "money", "symbol": "#", "precision": 0, "thousand": False}
OPEN_LINK_CSS = """
.tabulator-cell[tabulator-field="order_id"] { color: #1976d2; text-decoration: underline; cursor: pointer; }
"""
WHEN = DateFormatter(format="%Y-%m-%d %H:%M")
BOOKKEEPING = ("modified_at", "modified_by", "version")     # change with every write: not what was changed

log = logging.getLogger(__name__)


class OrdersGrid(pn.viewable.Viewer):
    state = param.ClassSelector(class_=OrdersState)
    error = param.String(default="", doc="Why the last action was refused, shown above the grid.")
    notice = param.String(default="", doc="The result of the last action.")
    changed_elsewhere = param.Boolean(default=False, doc="Orders were added that the grid cannot count.")
    live = param.String(default="", doc="Who changed which orders on this page just now.")
    new_orders = param.Integer(default=0, doc="New orders matching the grid's filters since it was read.")
    here = param.String(default="", doc="Who else has an order of this page open or is editing it now.")

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.table = SqlTable(
            s.page, key="order_id", page_size=100, header_filters=HEADER_FILTERS, titles=TITLES,
            on_edit=self._edit if s.can_edit else None, editors=EDITORS, hidden_columns=["version"],
            formatters={"order_id": ORDER_NUMBER, "total": MONEY, "discount": MONEY, "shipping_fee": MONEY,
                        "created_at": WHEN, "modified_at": WHEN},
            frozen_columns=["order_id"], height=560, stylesheets=[OPEN_LINK_CSS])
        # Clicking an order number opens the order form.
        self.table.table.on_click(lambda e: s.param.update(order=int(self.table.table.value.iloc[e.row]["order_id"])),
                                  column="order_id")
        if s.can_edit:
            self.table.table.on_click(self._editing)
        self.problems = HTML("", stylesheets=[CARD_CSS], sizing_mode="stretch_width")
        self.chooser = ConflictChooser(self._save_choice, titles=lambda f: TITLES.get(f, f))
        self.bulk_status = pmui.Select(label="Set status of the ticked orders to", options=list(STATUSES),
                                       value="confirmed", width=260)
        self.bulk_apply = pmui.Button(label="Apply", variant="outlined", disabled=True)
        self.bulk_cancel = pmui.Button(label="Cancel ticked orders", variant="outlined", color="error",
                                       disabled=True)
        self.bulk_apply.on_click(lambda _: self._bulk(self.bulk_status.value))
        self.bulk_cancel.on_click(lambda _: self._bulk("cancelled"))
        self.export = pmui.Button(label="Export CSV", icon="download", variant="outlined", href=s.export_link(),
                                  target="_blank")
        self.new_order = pmui.Button(label="New order", icon="add", variant="contained", visible=s.can_edit)
        self.new_order.on_click(lambda _: s.param.update(order=0))
        self.table.param.watch(self._on_selection, "selected_keys")
        self.table.param.watch(lambda e: self._update_export(), "page")
        s.param.watch(lambda e: self.reload(), "search")
        s.param.watch(self._on_version, "version")
        s.param.watch(lambda e: self.table.refresh(), "saved")
        s.param.watch(lambda e: self._show_who_is_here(), "presence_version")
        self.table.param.watch(lambda e: self._show_who_is_here(), "page")
        self._version_seen = s.feed_version()
        self._live_at, self._live_due = -1e9, False
        self.table.refresh()

    # -- actions --------------------------------------------------------------------------

    def shown(self) -> None:
        """On screen again: if the grid never loaded (the database was away), try now; else show
        what others changed meanwhile."""
        if self.table.page is None:
            self.table.refresh()
        else:
            self._on_version()

    def reload(self, _=None) -> None:
        self.param.update(changed_elsewhere=False, new_orders=0, live="")
        self.table.reset()

    LIVE_EVERY = 1.0      # seconds: a grid shows others' changes at most this often (bursts wait and merge)

    def _on_version(self, _event=None) -> None:
        """Show what others changed, now if the grid is on screen, else when it is next shown; at
        most once a LIVE_EVERY, so a busy minute costs each open grid a few updates, not one per save."""
        if self.table.page is None or not self._on_screen():
            return
        wait = self._live_at + self.LIVE_EVERY - time.monotonic()
        if wait > 0:
            document = pn.state.curdoc
            if not self._live_due and document is not None and document.session_context is not None:
                self._live_due = True
                document.add_timeout_callback(self._on_version_due, int(wait * 1000))
            return
        self._live_at = time.monotonic()
        version = self.state.feed_version()
        changes, self._version_seen = self.state.changes_since(self._version_seen), version
        try:
            self._show_changed_rows(version, changes.updated)
            self._count_new_orders(changes.inserted)
        except AppError as exc:      # the page stays as it was; the next change tries again
            log.info("live update of the orders grid skipped: %s", exc.message)

    def _on_version_due(self) -> None:
        self._live_due = False
        self._on_version()

    def _shown_as_grid(self, rows: list[dict]) -> list[dict]:
        return self.state.local_times(pd.DataFrame(rows)).to_dict("records") if rows else []

    def _on_screen(self) -> bool:
        return self.state.tab == "orders" and self.state.app.workspace in (None, "orders")

    def _show_changed_rows(self, version: int, updated) -> None:
        """Rows on the page that others changed show their new values, the changed cells flash, and
        a line says who changed what. This session's own saves are not news."""
        s = self.state
        on_page = self.table.keys() if updated is None else self.table.keys() & updated
        held = self.table.held & self.table.keys() - on_page          # left alone last time: read again
        if not on_page and not held:
            return
        rows = self._shown_as_grid(s.orders.grid_rows(on_page | held)) if updated is None or held else []
        if updated is not None and not held:  # read once for every grid of this process
            burst = s.orders.changed_rows(version, updated, self._shown_as_grid)
            rows = [burst[key] for key in on_page if key in burst]

        def news(row: dict, columns: list[str]) -> list[str]:
            return [c for c in columns if c not in BOOKKEEPING] if row.get("modified_by") != s.user else []
        by_others = [(row, news(row, columns)) for row, columns in self.table.update_rows(rows, mark=news)]
        said = [f"#{row['order_id']}: {', '.join(TITLES.get(c, c).lower() for c in columns)} changed by "
                f"{row.get('modified_by') or 'someone'} at {_clock(row.get('modified_at'))}"
                for row, columns in by_others if columns]
        if said:
            self.live = "; ".join(said[:5]) + (f"; and {len(said) - 5} more" if len(said) > 5 else "")

    def _editing(self, event) -> None:
        """A click in an editable cell may start an edit: others see who is editing which field
        of the order until the edit is handled, or for as long as live updates hold the row."""
        if EDITORS.get(event.column) is None or event.row >= len(self.table.table.value):
            return
        order_id = int(self.table.table.value["order_id"].iloc[event.row])
        self.state.be_at(order_id, "grid", (event.column,), for_seconds=SqlTable.EDIT_GRACE)

    def _show_who_is_here(self) -> None:
        self.here = self.state.who_else_is_at(self.table.keys())

    def _count_new_orders(self, inserted) -> None:
        if inserted is None:
            self.changed_elsewhere = True
        elif inserted:
            s = self.state
            filtered = s.search or any(value not in ("", None, [], ()) for _, value in self.table.query.filters)
            self.new_orders += s.orders.count_matching(self.table.query, s.search, inserted) if filtered else len(inserted)

    def _update_export(self) -> None:
        self.export.href = self.state.export_link()

    def _on_selection(self, event) -> None:
        count = len(event.new)
        self.bulk_apply.disabled = self.bulk_cancel.disabled = count == 0 or not self.state.can_edit
        self.bulk_apply.label = f"Apply to {count}" if count else "Apply"
        self.bulk_cancel.label = f"Cancel {fmt.plural(count, 'order')}" if count else "Cancel ticked orders"

    def _edit(self, before: dict, column: str, value) -> dict | None:
        """Save one cell: the value the row showed is what the data layer compares with."""
        return self._save(before["order_id"], [Edit(column, before.get(column), value)], before.get("version"))

    def _save(self, order_id: int, edits: list[Edit], seen_version) -> dict | None:
        """Save the edits; the row as it now is (to show), or None to put back what it showed."""
        s = self.state
        try:
            with s.writing(reread=False):        # the edited row is patched in place
                row = s.orders.save(s.user, order_id, edits)
        except OrderConflict as conflict:
            self.chooser.show(conflict, edits)
            self.param.update(error="", notice="")
            return self._display(conflict.current)
        except AppError as exc:
            self.param.update(error=f"Order {order_id}: {exc.message} Nothing was saved.", notice="")
            return None
        finally:
            s.leave("grid")
        merged = _merged(s, order_id, seen_version, row.get("version"))
        fields = ", ".join(TITLES.get(e.field, e.field).lower() for e in edits)
        # The version makes each save's line new, so saving the same cell twice is seen to happen twice.
        self.param.update(error="", notice=f"Order {order_id}: {fields} saved (version {row['version']})"
                                           + (f", on top of changes made since you loaded it by {merged}." if merged else "."))
        self.chooser.clear()
        return self._display(row)

    def _save_choice(self, conflict: OrderConflict, edits: list[Edit]) -> None:
        """The person chose between their value and a colleague's (the row shows the colleague's)."""
        if not edits:
            self.param.update(error="", notice=f"Order {conflict.order_id}: kept as it is; nothing was saved.")
            return
        after = self._save(conflict.order_id, edits, conflict.current.get("version"))
        position = self.table.position_of(conflict.order_id)
        if after is not None and position is not None:
            self.table.replace_row(position, after)

    def _display(self, row: dict) -> dict:
        frame = self.state.local_times(pd.DataFrame([row]))
        return frame.iloc[0].to_dict()

    def _bulk(self, status: str) -> None:
        s = self.state
        rows = self.table.table.value
        ticked = set(self.table.selected_keys)
        targets = [(int(r.order_id), r.status) for r in rows.itertuples() if r.order_id in ticked]
        try:
            with s.writing():
                count = s.orders.set_status(s.user, targets, status)
        except BulkRefused as refused:
            self.problems.object = refusals_html(refused.message, {f"Order {k}": v for k, v in refused.reasons.items()})
            self.param.update(error="", notice="")
            return
        except AppError as exc:
            self.param.update(error=exc.message, notice="")
            return
        self.problems.object = ""
        self.param.update(error="", notice=f"{fmt.plural(count, 'order')} set to {status}.")

    def __panel__(self):
        s = self.state
        search = pmui.TextInput.from_param(s.param.search, label="Search", placeholder="customer name, e-mail or #order",
                                           width=340)
        reload = pmui.Button(label="Reload", icon="refresh", variant="text")
        reload.on_click(self.reload)
        stale = alert("Orders were added since this page was read (an import or a job): reload to see them.",
                      severity="info", visible=self.param.changed_elsewhere)
        show_new = pmui.Button(label=self.param.new_orders.rx().rx.pipe(
            lambda n: f"{fmt.plural(n, 'new order')} — show"), variant="outlined", color="info", size="small",
            visible=self.param.new_orders.rx() > 0)
        show_new.on_click(self.reload)
        live = HTML(self.param.live, styles={"font-size": ".875rem", "opacity": ".8"}, margin=(0, 12),
                    css_classes=["live-changes"])
        here = HTML(self.param.here, styles={"font-size": ".875rem", "color": "#0277bd"}, margin=(0, 12),
                    css_classes=["who-is-here"], visible=self.param.here.rx() != "")
        read_only = alert(f"You can read orders but not change them ({s.user}); ask an administrator "
                          "to add you to ORDER_EDITORS.", severity="info", visible=not s.can_edit)
        bulk = pn.Row(self.bulk_status, pn.Row(self.bulk_apply, self.bulk_cancel, margin=(18, 0, 0, 0)),
                      visible=s.can_edit)
        return pn.Column(
            pn.Row(search, pn.Row(reload, self.new_order, self.export, margin=(18, 0, 0, 0)),
                   pn.Spacer(width=24), bulk, sizing_mode="stretch_width"),
            read_only, stale, pn.Row(show_new, live), here, outcome_alerts(self.param.error, self.param.notice), self.chooser, self.problems, self.table,
            sizing_mode="stretch_width")


def _merged(state: OrdersState, order_id: int, seen_version, saved_version) -> str:
    """Who changed the order between what the person saw and their save, which merged with it."""
    if seen_version is None or saved_version is None or pd.isna(seen_version) or saved_version <= int(seen_version) + 1:
        return ""
    return state.orders.merged_with(order_id, int(seen_version), int(saved_version))


def _clock(value) -> str:
    """A modification time as the grid shows it, to the minute."""
    return pd.Timestamp(value).strftime("%H:%M") if value is not None and not pd.isna(value) else "just now"
