"""CSV in and out: export every order matching the grid (streamed by the server), and import a
CSV of order updates after a preview that marks each row valid or says why not."""
from __future__ import annotations

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param

from data.errors import AppError
from data.orders import IMPORT_COLUMNS, ImportPreview

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

    def __panel__(self):
        optional = join((html("<code>{}</code>", c) for c in IMPORT_COLUMNS if c != "order_id"), ", ")
        return pn.Column(
            heading("Export"),
            HTML(html("Every order matching the grid's search and column filters, as CSV (streamed, so large "
                      "exports start at once). The file can be edited and imported back: its <code>version</code> "
                      "column lets the import refuse rows changed in the meantime.")),
            self.export,
            heading("Import updates"),
            HTML(html("Columns: <code>order_id</code> (required) and any of {}. Nothing is written until you "
                      "apply, and then every row is applied or none is.", optional)),
            self.upload, outcome_alerts(self.param.error, self.param.notice), self.summary, self.table, self.apply,
            sizing_mode="stretch_width")
