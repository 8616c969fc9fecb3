"""CSV in and out: export every order matching the grid (streamed by the server), and import a
CSV of order updates after a preview that marks each row valid or says why not."""
from __future__ import annotations

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param

from data.errors import AppError
from data.orders import IMPORT_COLUMNS, Batch, BulkRefused, ImportPreview

from .. import format as fmt
from ..markup import HTML, html, join
from ..widgets import heading, outcome_alerts, refusals_html
from .state import OrdersState


class TransferView(pn.viewable.Viewer):
    state = param.ClassSelector(class_=OrdersState)
    error = param.String(default="")
    notice = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.preview: ImportPreview | None = None
        self.upload = pmui.FileInput(label="Choose a CSV of order updates", accept=".csv,text/csv",
                                     max_file_size=5 * 2**20, disabled=not s.can_edit)
        self.upload.param.watch(self._previewed, "value")
        self.summary = HTML("")
        self.table = pn.widgets.Tabulator(pd.DataFrame(), show_index=False, disabled=True, pagination="local",
                                          page_size=15, sizing_mode="stretch_width", layout="fit_columns",
                                          titles={"line": "Line", "order_id": "Order", "valid": "Valid",
                                                  "changes": "Changes", "reasons": "Why not"},
                                          formatters={"valid": {"type": "tickCross"}}, visible=False)
        self.apply = pmui.Button(label="Apply all changes", variant="contained", disabled=True, visible=s.can_edit)
        self.apply.on_click(self._apply)
        self.export = pmui.Button(label="Export CSV", icon="download", variant="outlined", href=s.export_link(),
                                  target="_blank")
        s.param.watch(lambda e: setattr(self.export, "href", s.export_link()), ["search", "filters"])
        self.batches = BatchUndo(state=s)

    def shown(self) -> None:
        """On screen again: the batches may have changed (a bulk change in the grid, say)."""
        self.batches.refresh()

    def _previewed(self, event) -> None:
        self.param.update(error="", notice="")
        self.preview = self.state.orders.preview_import(event.new or b"")
        preview = self.preview
        if preview.problem:
            self.param.update(error=preview.problem)
            self.table.param.update(value=pd.DataFrame(), visible=False)
            self.summary.object = ""
            self.apply.disabled = True
            return
        frame = preview.frame()
        self.table.param.update(value=frame.sort_values(["valid", "line"]), visible=True)
        invalid = int((~frame["valid"]).sum())
        changes = int((frame["changes"] != "no change").sum())
        self.summary.object = html(
            "<b>{}</b>: {} valid, <b style='color:{}'>{} invalid</b>, {} with changes. {}",
            fmt.plural(len(frame), "row"), f"{len(frame) - invalid:,}", "#d32f2f" if invalid else "inherit",
            f"{invalid:,}", f"{changes:,}",
            "Fix the invalid rows and choose the file again; nothing is applied while any row is invalid."
            if invalid else "Applying changes every row or none.")
        self.apply.disabled = invalid > 0 or changes == 0

    def _apply(self, _=None) -> None:
        s = self.state
        try:
            with s.writing():
                count = s.orders.apply_import(s.user, self.preview)
        except AppError as exc:
            reasons = getattr(exc, "reasons", {})
            self.param.update(error="" if reasons else exc.message, notice="")
            if reasons:
                self.summary.object = refusals_html(exc.message, reasons)
            return
        self.apply.disabled = True
        self.param.update(error="", notice=f"{fmt.plural(count, 'order')} updated in one transaction.")
        self.batches.refresh()

    def __panel__(self):
        optional = join((html("<code>{}</code>", c) for c in IMPORT_COLUMNS if c != "order_id"), ", ")
        return pn.Column(
            heading("Export"),
            HTML(html("Every order matching the grid's search and column filters, as CSV (streamed, so large "
                      "exports start at once). The file can be edited and imported back: with its <code>version</code> "
                      "column, a field someone changed since is kept as they left it, unless your file changes it "
                      "too (then that row is refused, with both values).")),
            self.export,
            heading("Import updates"),
            HTML(html("Columns: <code>order_id</code> (required) and any of {}. Nothing is written until you "
                      "apply, and then every row is applied or none is.", optional)),
            self.upload, outcome_alerts(self.param.error, self.param.notice), self.summary, self.table, self.apply,
            self.batches, sizing_mode="stretch_width")


BATCH_KINDS = {"bulk": "status change", "import": "import"}


class BatchUndo(pn.viewable.Viewer):
    """This person's recent bulk actions and imports, and undoing one: every field it changed is put
    back in one transaction, or nothing is and each order that stops it is named; those may then be
    left out."""

    state = param.ClassSelector(class_=OrdersState)
    error = param.String(default="")
    notice = param.String(default="")

    def __init__(self, **params):
        super().__init__(**params)
        self.choice = pmui.Select(label="Your recent bulk changes and imports", options={}, width=460)
        self.undo = pmui.Button(label="Undo this batch", variant="outlined", color="warning", disabled=True)
        self.undo_others = pmui.Button(label="Undo the others", variant="outlined", color="warning", visible=False)
        self.refusals = HTML("", sizing_mode="stretch_width")
        self.undo.on_click(lambda _: self._undo(frozenset()))
        self.undo_others.on_click(lambda _: self._undo(self._refused))
        self.choice.param.watch(lambda _: self._chosen(), "value")
        self._refused: frozenset[int] = frozenset()
        self._batches: dict[str, Batch] = {}
        self.choice.param.watch(lambda e: e.new and self.state.param.update(batch=e.new), "value")
        self.state.param.watch(lambda e: e.new and e.new != self.choice.value and self.refresh(), "batch")
        self.refresh()

    def refresh(self) -> None:
        """The person's latest batches, and the one opened from an order's history if older; the
        one chosen stays chosen."""
        s = self.state
        wanted = s.batch or self.choice.value
        try:
            batches = s.orders.recent_batches(s.user)
            if wanted and wanted not in {b.batch_id for b in batches}:
                batches += s.orders.batches_by_id([wanted])
        except AppError as exc:
            self.error = exc.message
            return
        self._batches = {b.batch_id: b for b in batches}
        options = {self._label(b): b.batch_id for b in batches}
        chosen = wanted if wanted in self._batches else next(iter(options.values()), None)
        self.choice.param.update(options=options, value=None)    # the browser shows a changed label only
        self.choice.value = chosen                                # for a changed value
        self._chosen()

    def _label(self, batch: Batch) -> str:
        kind = BATCH_KINDS.get(batch.action, "undo" if batch.action.startswith("revert") else batch.action)
        when = fmt.local_time(batch.changed_at, self.state.orders.timezone)
        return f"{when} · {kind} · {fmt.plural(batch.orders, 'order')}" + (" (undone)" if batch.undone else "")

    def _chosen(self) -> None:
        self._refused = frozenset()
        self.refusals.object = ""
        self.undo_others.visible = False
        batch = self._batches.get(self.choice.value)
        self.undo.disabled = batch is None or batch.undone or not self.state.can_edit

    def _undo(self, leave_out: frozenset[int]) -> None:
        s = self.state
        try:
            with s.writing():
                count = s.orders.undo_batch(s.user, self.choice.value, leave_out)
        except BulkRefused as refused:
            self._refused = leave_out | {int(k) for k in refused.reasons}
            self.refusals.object = refusals_html(refused.message, {f"Order {k}": v for k, v in refused.reasons.items()})
            self.undo_others.param.update(visible=True, label=f"Undo the others (leave out {fmt.plural(len(self._refused), 'order')})")
            self.param.update(error="", notice="")
            return
        except AppError as exc:
            self.param.update(error=exc.message, notice="")
            return
        self.refresh()
        self.param.update(error="", notice=f"Batch undone: {fmt.plural(count, 'order')} put back in one transaction"
                                           + (f", {fmt.plural(len(leave_out), 'order')} left out." if leave_out else "."))

    def __panel__(self):
        return pn.Column(
            heading("Undo a batch"),
            HTML(html("A bulk status change or an import can be undone as a whole: every field it changed goes "
                      "back to what it was, in one transaction. Orders changed since, or whose status cannot go "
                      "back (delivered, returned), are named and nothing is written; you may leave them out.")),
            pn.Row(self.choice, pn.Row(self.undo, self.undo_others, margin=(18, 0, 0, 0))),
            outcome_alerts(self.param.error, self.param.notice), self.refusals, sizing_mode="stretch_width")
