"""The single-order form (an existing order, or a new one) and the order's history.

Fields are checked with the same rules the data layer applies (`data.order_rules`), so a person
sees which field is wrong before saving; the save itself is checked again by the data layer.
"""
from __future__ import annotations

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param
from bokeh.models.widgets.tables import DateFormatter, NumberFormatter

from data.errors import AppError, ValidationError
from data.order_rules import ITEMS, Edit, allowed_statuses, clean_customer_field, clean_money, clean_text, same_value
from data.orders import NewCustomer, OrderConflict, OrderDraft

from .. import format as fmt
from ..markup import HTML, html
from ..widgets import LazyTabs, outcome_alerts
from .conflict import ConflictChooser
from .state import OrdersState

ITEM_COLUMNS = ["sku", "product", "quantity", "unit_price", "subtotal"]
WHEN = DateFormatter(format="%Y-%m-%d %H:%M:%S")


class OrderForm(pn.viewable.Viewer):
    """Edit order `order_id`, or create one when it is 0."""

    state = param.ClassSelector(class_=OrdersState)
    order_id = param.Integer(default=0, doc="The order being edited; 0 for a new order.")
    error = param.String(default="")
    notice = param.String(default="")
    missing = param.Boolean(default=False, doc="The order does not exist: only the message is shown.")
    here = param.String(default="", doc="Who else has this order open, and what they are editing.")

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.products = s.orders.products()
        editable = s.can_edit
        field = dict(sizing_mode="stretch_width", disabled=not editable)
        self.customer_name = pmui.TextInput(label="Customer name", **field)
        self.customer_email = pmui.TextInput(label="Customer e-mail", **field)
        self.customer_address = pmui.TextInput(label="Customer address", **field)
        self.shipping_address = pmui.TextInput(label="Ship to", **field)
        self.status = pmui.Select(label="Status", options=["pending"], **field)
        self.discount = pmui.TextInput(label="Discount ($)", value="0.00", **field)
        self.shipping_fee = pmui.TextInput(label="Shipping fee ($)", value="0.00", **field)
        self.notes = pmui.TextAreaInput(label="Notes", rows=2, **field)
        self.customer_mode = pmui.RadioButtonGroup(options=["Existing customer", "New customer"],
                                                   value="Existing customer", size="small", disabled=not editable)
        self.find = pmui.TextInput(label="Find customer", placeholder="name or e-mail, then Enter", **field)
        self.matches = pmui.Select(label="Customer", options={}, **field)
        self.find.param.watch(self._find_customers, "value")
        self.customer_mode.param.watch(lambda e: self._show_customer_mode(), "value")
        self.items = pn.widgets.Tabulator(
            pd.DataFrame(columns=ITEM_COLUMNS), show_index=False, selectable="checkbox", sizing_mode="stretch_width",
            disabled=not editable, height=220, layout="fit_columns",
            editors={"sku": {"type": "list", "values": list(self.products["sku"]), "autocomplete": True,
                             "listOnEmpty": True},
                     "quantity": {"type": "number", "min": 1, "max": 999, "step": 1},
                     "unit_price": {"type": "number", "min": 0, "step": 0.01}, "product": None, "subtotal": None},
            titles={"sku": "SKU", "product": "Product", "quantity": "Qty", "unit_price": "Unit price",
                    "subtotal": "Subtotal"},
            formatters={"unit_price": NumberFormatter(format="$0,0.00"), "subtotal": NumberFormatter(format="$0,0.00")})
        self.items.on_edit(self._item_edited)
        self.add_line = pmui.Button(label="Add line", icon="add", variant="text", visible=editable)
        self.remove_lines = pmui.Button(label="Remove ticked lines", icon="delete", variant="text", visible=editable)
        self.add_line.on_click(self._add_line)
        self.remove_lines.on_click(self._remove_lines)
        self.totals = HTML("")
        self.facts = HTML("")
        self.save = pmui.Button(label="Save", variant="contained", visible=editable)
        self.cancel_order = pmui.Button(label="Cancel this order", variant="outlined", color="error", visible=False)
        self.save.on_click(self._save)
        self.cancel_order.on_click(self._cancel)
        self._history: OrderHistory | None = None          # built when its tab is first opened
        self._loaded: dict = {}
        self._seen: dict = {}                               # each field as the form showed it
        self._editing: tuple[str, ...] = ()                 # the fields others are told this form edits
        self.chooser = ConflictChooser(self._save_choice, titles=lambda f: f.replace("_", " ").capitalize())
        self.load()
        if self.order_id:
            for widget in self._field_widgets():
                widget.param.watch(lambda e: self._tell_what_is_edited(), "value")
            s.param.watch(lambda e: self._show_who_is_here(), "presence_version")
            self._show_who_is_here()

    # -- loading --------------------------------------------------------------------------

    def load(self) -> None:
        s = self.state
        self._seen = {}                       # until loaded, no field counts as edited
        self.param.update(error="", notice="")
        for widget in (self.customer_name, self.customer_email, self.customer_address, self.shipping_address, self.discount,
                       self.shipping_fee, self.notes):
            widget.param.update(error_state=False, helper_text="")
        if not self.order_id:
            self._loaded = {}
            self.items.value = pd.DataFrame(columns=ITEM_COLUMNS)
            self.status.param.update(options=["pending"], value="pending", disabled=True)
            self.facts.object = html("A new order starts as <b>pending</b>.")
            self._show_customer_mode()
            self._update_totals()
            return
        order = s.orders.order(self.order_id)
        if order is None:
            self.param.update(missing=True, error=f"There is no order {self.order_id}: check the number, or "
                                                  "find the order in the grid.")
            return
        self._loaded = order
        self.customer_name.value, self.customer_email.value, self.customer_address.value = order["name"], order["email"], order["address"]
        self.shipping_address.value, self.notes.value = order["shipping_address"], order["notes"]
        self.discount.value, self.shipping_fee.value = f"{order['discount']:.2f}", f"{order['shipping_fee']:.2f}"
        options = [order["status"], *allowed_statuses(order["status"])]
        self.status.param.update(options=options, value=order["status"], disabled=not s.can_edit or len(options) == 1)
        items = s.orders.items(self.order_id)
        self.items.value = items[ITEM_COLUMNS].copy()
        self._seen = {**self._shown(), ITEMS: self._lines()}
        times = s.local_times(pd.DataFrame([order]))
        self.facts.object = html("Order <b>{}</b> · customer {} · created {:%Y-%m-%d %H:%M} · modified "
                                 "{:%Y-%m-%d %H:%M} by {} · version {}", order["order_id"], order["customer_id"],
                                 times["created_at"].iloc[0], times["modified_at"].iloc[0], order["modified_by"],
                                 order["version"])
        self.cancel_order.visible = s.can_edit and "cancelled" in allowed_statuses(order["status"])
        if self._history is not None:
            self._history.shown()
        self._show_customer_mode()
        self._update_totals()

    def _show_customer_mode(self) -> None:
        existing_order = bool(self.order_id)
        choosing = not existing_order and self.customer_mode.value == "Existing customer"
        self.customer_mode.visible = not existing_order
        self.find.visible = self.matches.visible = choosing
        self.customer_name.visible = self.customer_email.visible = self.customer_address.visible = not choosing

    def _find_customers(self, event) -> None:
        if not event.new.strip():
            return
        found = self.state.orders.find_customers(event.new)
        self.matches.options = {f"{r.name} <{r.email}> ({r.customer_id})": r.customer_id for r in found.itertuples()}
        if not len(found):
            self.matches.helper_text = "No customer matches; try part of a name or e-mail, or add a new customer."

    # -- items ----------------------------------------------------------------------------

    def _item_edited(self, event) -> None:
        frame = self.items.value
        if event.column == "sku":
            match = self.products[self.products["sku"] == str(event.value).strip().upper()]
            if len(match):
                frame.loc[frame.index[event.row], ["product", "unit_price"]] = [match["name"].iloc[0],
                                                                                float(match["unit_price"].iloc[0])]
        frame["subtotal"] = pd.to_numeric(frame["quantity"], errors="coerce") * pd.to_numeric(
            frame["unit_price"], errors="coerce")
        self.items.value = frame.copy()
        self._update_totals()

    def _add_line(self, _=None) -> None:
        first = self.products.iloc[0]
        line = pd.DataFrame([{"sku": first["sku"], "product": first["name"], "quantity": 1,
                              "unit_price": float(first["unit_price"]), "subtotal": float(first["unit_price"])}])
        self.items.value = pd.concat([self.items.value, line], ignore_index=True)
        self._update_totals()

    def _remove_lines(self, _=None) -> None:
        keep = [i for i in range(len(self.items.value)) if i not in set(self.items.selection)]
        self.items.selection = []
        self.items.value = self.items.value.iloc[keep].reset_index(drop=True)
        self._update_totals()

    def _update_totals(self) -> None:
        subtotal = float(pd.to_numeric(self.items.value.get("subtotal", pd.Series(dtype=float)),
                                       errors="coerce").fillna(0).sum())
        try:
            total = subtotal + float(self.shipping_fee.value or 0) - float(self.discount.value or 0)
            shown = fmt.money(total)
        except ValueError:
            shown = "–"
        self.totals.object = html("Items {} + shipping − discount = <b>{}</b> (checked again when you save)",
                                  fmt.money(subtotal), shown)
        if self.order_id:
            self._tell_what_is_edited()        # the items may have changed

    # -- saving ---------------------------------------------------------------------------

    def _field_problems(self) -> bool:
        """Mark each wrong field the way the data layer would refuse it; True if any is wrong."""
        checks = [(self.discount, lambda v: clean_money(v, "Discount")),
                  (self.shipping_fee, lambda v: clean_money(v, "Shipping fee")),
                  (self.shipping_address, lambda v: clean_text(v, "shipping_address", required=True)),
                  (self.notes, lambda v: clean_text(v, "notes"))]
        if self.customer_name.visible:
            checks += [(self.customer_name, lambda v: clean_customer_field("name", v)),
                       (self.customer_email, lambda v: clean_customer_field("email", v)),
                       (self.customer_address, lambda v: clean_customer_field("address", v))]
        wrong = False
        for widget, check in checks:
            try:
                check(widget.value)
                widget.param.update(error_state=False, helper_text="")
            except ValidationError as exc:
                widget.param.update(error_state=True, helper_text=exc.message)
                wrong = True
        return wrong

    def _field_widgets(self) -> tuple:
        return (self.customer_name, self.customer_email, self.customer_address, self.shipping_address,
                self.status, self.discount, self.shipping_fee, self.notes)

    def _tell_what_is_edited(self) -> None:
        """Others at this order see which fields this form has changed and not yet saved."""
        if self.missing or not self._seen:
            return
        fields = tuple(e.field for e in self.edits())
        if fields != self._editing:
            self._editing = fields
            self.state.be_at(self.order_id, "form", fields)

    def _show_who_is_here(self) -> None:
        self.here = self.state.who_else_is_at([self.order_id], one_order=True)

    def _lines(self) -> list[tuple]:
        return [(r.sku, r.quantity, r.unit_price) for r in self.items.value.itertuples()]

    def _shown(self) -> dict:
        """Every field as it is on screen now, by the names the data layer takes."""
        return {"status": self.status.value, "discount": self.discount.value, "shipping_fee": self.shipping_fee.value,
                "shipping_address": self.shipping_address.value, "notes": self.notes.value,
                "name": self.customer_name.value, "email": self.customer_email.value,
                "address": self.customer_address.value}

    def edits(self) -> list[Edit]:
        """What the person changed since the form was loaded, each with the value it showed then."""
        now = {**self._shown(), ITEMS: self._lines()}
        return [Edit(field, seen, now[field]) for field, seen in self._seen.items()
                if not same_value(field, now[field], seen)]

    def _save(self, _=None) -> None:
        if self.missing:
            return
        if self._field_problems():
            self.param.update(error="Some fields need attention (marked in red). Nothing was saved.", notice="")
            return
        s = self.state
        if not self.order_id:
            try:
                with s.writing():
                    created = s.orders.create_order(s.user, self._draft())
            except AppError as exc:
                self.param.update(error=f"{exc.message} Nothing was saved.", notice="")
                return
            s.param.update(order=created)              # the workspace reopens the form on the new order
            return
        edits = self.edits()
        if not edits:
            self.param.update(error="", notice="Nothing has changed, so there was nothing to save.")
            return
        self._save_edits(edits, self._loaded["version"])

    def _save_edits(self, edits: list[Edit], seen_version: int) -> None:
        s = self.state
        try:
            with s.writing():
                saved = s.orders.save(s.user, self.order_id, edits)
        except OrderConflict as conflict:       # the form keeps what was typed until the person chooses
            self.param.update(notice="", error="")
            self.chooser.show(conflict, edits)
            return
        except AppError as exc:
            self.param.update(error=f"{exc.message} Nothing was saved.", notice="")
            return
        self.chooser.clear()
        self.load()
        changed = ", ".join(e.field.replace("_", " ") for e in edits)
        merged = s.orders.merged_with(self.order_id, seen_version, saved["version"]) \
            if saved["version"] > seen_version + 1 else ""
        self.param.update(error="", notice=f"Order {self.order_id} saved (version {saved['version']}): {changed}"
                                           + (f", on top of changes made since you opened it by {merged}." if merged else "."))

    def _save_choice(self, conflict: OrderConflict, edits: list[Edit]) -> None:
        """The person chose between their values and a colleague's: save that, or, keeping all of
        theirs, show the order as it is."""
        if not edits:
            self.load()
            self.param.update(error="", notice=f"Order {self.order_id}: kept as it is; nothing was saved.")
            return
        self._save_edits(edits, conflict.current["version"])

    def _draft(self) -> OrderDraft:
        existing = self.customer_mode.value == "Existing customer"
        return OrderDraft(
            customer_id=self.matches.value if existing else None,
            new_customer=None if existing else NewCustomer(self.customer_name.value, self.customer_email.value, self.customer_address.value),
            items=tuple(self._lines()), shipping_address=self.shipping_address.value,
            shipping_fee=self.shipping_fee.value, discount=self.discount.value, notes=self.notes.value)

    def _cancel(self, _=None) -> None:
        s = self.state
        if self.missing:
            return
        try:
            with s.writing():
                s.orders.cancel(s.user, [(self.order_id, self._seen["status"])])
        except AppError as exc:
            message = exc.message + (" " + "; ".join(sum(exc.reasons.values(), [])) if hasattr(exc, "reasons") else "")
            self.param.update(error=message, notice="")
            return
        self.load()
        self.param.update(error="", notice=f"Order {self.order_id} cancelled. Its history is kept.")

    # -- layout ---------------------------------------------------------------------------

    def __panel__(self):
        here = HTML(self.param.here, styles={"font-size": ".875rem", "color": "#0277bd"},
                    css_classes=["who-is-here"], visible=self.param.here.rx() != "")
        details = pn.Column(
            self.facts, here, outcome_alerts(self.param.error, self.param.notice),
            self.customer_mode, pn.Row(self.find, self.matches),
            pn.Row(self.customer_name, self.customer_email), self.customer_address,
            pn.Row(self.shipping_address, self.status),
            HTML(html("<b>Items</b>")), self.items, pn.Row(self.add_line, self.remove_lines),
            pn.Row(self.shipping_fee, self.discount), self.totals, self.notes,
            self.chooser, pn.Row(self.save, self.cancel_order), sizing_mode="stretch_width")
        if self.missing:
            return outcome_alerts(self.param.error, self.param.notice)
        if not self.order_id:
            return details
        return LazyTabs([("Details", lambda: details), ("History", self._history_view)])

    def _history_view(self) -> "OrderHistory":
        self._history = OrderHistory(state=self.state, order_id=self.order_id)
        return self._history


class OrderHistory(pn.viewable.Viewer):
    """The order's status history and every change to it, newest first, read when the tab is opened
    and again when it is shown after a save (tables in a tab never shown are not filled: the browser
    has not built them). A change made by a bulk action or an import names its batch; clicking the
    batch opens it in Import & export, where it can be undone."""

    state = param.ClassSelector(class_=OrdersState)
    order_id = param.Integer(default=0)

    CHANGES = {"changed_at": "When", "changed_by": "Who", "what": "What", "old_value": "Before",
               "new_value": "After", "batch": "Batch"}

    def __init__(self, **params):
        super().__init__(**params)
        self.statuses = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True,
                                             sizing_mode="stretch_width", height=180, layout="fit_columns",
                                             formatters={"When": WHEN})
        self.audit = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True, sizing_mode="stretch_width",
                                          height=240, layout="fit_columns", formatters={"When": WHEN},
                                          hidden_columns=["batch_id"], stylesheets=[BATCH_LINK_CSS])
        self.audit.on_click(self._open_batch, column="Batch")
        self.shown()

    def shown(self) -> None:
        s = self.state
        history = s.local_times(s.orders.status_history(self.order_id))
        self.statuses.value = history.rename(columns={"changed_at": "When", "from_status": "From", "to_status": "To",
                                                      "changed_by": "Who"})
        audit = s.local_times(s.orders.audit_trail(self.order_id))
        audit["what"] = [field or ("created" if entity == "orders" else entity)
                         for field, entity in zip(audit["field"], audit["entity"])]
        audit["batch"] = [_batch_label(action, batch) for action, batch in zip(audit["action"], audit["batch_id"])]
        self.audit.value = audit[[*self.CHANGES, "batch_id"]].rename(columns=self.CHANGES)

    def _open_batch(self, event) -> None:
        batch_id = self.audit.value["batch_id"].iloc[event.row]
        if batch_id:
            self.state.open_batch(batch_id)

    def __panel__(self):
        return pn.Column(HTML(html("<b>Status history</b>, newest first")), self.statuses,
                         HTML(html("<b>Every change</b>, newest first (who, when, field, before → after; a batch "
                                   "opens in Import &amp; export, where it can be undone)")), self.audit,
                         sizing_mode="stretch_width")


BATCH_LINK_CSS = """
.tabulator-cell[tabulator-field="Batch"] { color: #1976d2; text-decoration: underline; cursor: pointer; }
"""


def _batch_label(action: str, batch_id: str | None) -> str:
    """A batch as the history names it: what it was and the start of its id."""
    if not batch_id:
        return ""
    kind = {"bulk": "status change", "import": "import"}.get(action, "undo" if action.startswith("revert") else action)
    return f"{kind} {batch_id[:8]}"
