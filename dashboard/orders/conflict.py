"""A save refused because someone else changed the same field: what the person saw when they
loaded it, what it is now and who made it so, and what they typed, side by side. They choose per
field, and nothing is written until they do; the grid and the order form both use this."""
from __future__ import annotations

from typing import Callable

import panel as pn
import panel_material_ui as pmui
import param

from data.order_rules import Edit
from data.orders import OrderConflict

from .. import format as fmt
from ..markup import HTML, html, join

THEIRS, MINE = "Keep theirs", "Use mine"


def resolved(edits: list[Edit], conflict: OrderConflict, choices: dict[str, str]) -> list[Edit]:
    """The edits to save after the person chose per conflicting field: theirs drops the field,
    mine is checked against their value (which the person has now seen); the other edits stay
    checked against what the person saw when they loaded it."""
    now = {c["field"]: c["new_value"] for c in conflict.changes}
    kept = []
    for edit in edits:
        if edit.field not in now:
            kept.append(edit)
        elif choices.get(edit.field) == MINE:
            kept.append(Edit(edit.field, now[edit.field], edit.new))
    return kept


class ConflictChooser(pn.viewable.Viewer):
    """Shown after a conflict until the person chooses; `save(edits)` then saves their choice (and
    may show the chooser again, if someone changed the order once more meanwhile)."""

    visible = param.Boolean(default=False, doc="A conflict waits for the person's choice.")

    def __init__(self, save: Callable[[OrderConflict, list[Edit]], None], titles: Callable[[str], str], **params):
        """`save(conflict, edits)` saves what the person chose (no edits: they kept everything of
        theirs); `titles(field)` names a field as the page does."""
        super().__init__(**params)
        self._save, self._title = save, titles
        self._pending: tuple[OrderConflict, list[Edit]] | None = None
        self._choice_of: dict[str, pmui.RadioButtonGroup] = {}      # field -> its choice, when several
        self.table = HTML("", sizing_mode="stretch_width", stylesheets=[CHOICE_CSS])
        self.choices = pn.Column(sizing_mode="stretch_width")
        self.use_mine = pmui.Button(label="Use mine", variant="contained", color="warning", size="small")
        self.keep_theirs = pmui.Button(label="Keep theirs", variant="outlined", size="small")
        self.save_choices = pmui.Button(label="Save my choices", variant="contained", color="warning", size="small")
        self.use_mine.on_click(lambda _: self.choose({f: MINE for f in self._stale()}))
        self.keep_theirs.on_click(lambda _: self.choose({f: THEIRS for f in self._stale()}))
        self.save_choices.on_click(lambda _: self.choose({f: w.value for f, w in self._choice_of.items()}))

    def show(self, conflict: OrderConflict, edits: list[Edit]) -> None:
        self._pending = (conflict, edits)
        mine = {e.field: e.new for e in edits}
        rows = join(html("<tr><td>{}</td><td>{}</td><td>{}<br><small>{} · {}</small></td><td><b>{}</b></td></tr>",
                         self._title(c["field"]), fmt.clipped(c["old_value"]), fmt.clipped(c["new_value"]), c["changed_by"],
                         str(c["changed_at"])[:16], fmt.clipped(mine.get(c["field"])))
                    for c in conflict.changes)
        others = [e for e in edits if e.field not in self._stale()]
        kept = html("<p>Your other changes ({}) are saved with your choice.</p>",
                    ", ".join(self._title(e.field) for e in others)) if others else ""
        people = ", ".join(sorted({c["changed_by"] for c in conflict.changes}))
        self.table.object = html(
            "<b>Order {}: {} changed by {} since you loaded it.</b> Nothing is saved until you choose."
            "<table class='choice'><tr><th>Field</th><th>Original (when you loaded it)</th><th>Theirs (now)</th><th>Yours</th></tr>"
            "{}</table>{}", conflict.order_id, ", ".join(self._title(f) for f in self._stale()), people, rows, kept)
        several = len(conflict.changes) > 1
        self._choice_of = {c["field"]: pmui.RadioButtonGroup(label=self._title(c["field"]), options=[THEIRS, MINE],
                                                             value=THEIRS, size="small")
                           for c in conflict.changes} if several else {}
        self.choices.objects = list(self._choice_of.values())
        self.save_choices.visible = several
        self.use_mine.visible = self.keep_theirs.visible = not several
        self.visible = True

    def clear(self) -> None:
        self._pending = None
        self.visible = False

    def _stale(self) -> list[str]:
        return [c["field"] for c in self._pending[0].changes] if self._pending else []

    def choose(self, choices: dict[str, str]) -> None:
        """Save with, per conflicting field, THEIRS or MINE (a field not named keeps theirs)."""
        if self._pending is None:
            return
        conflict, edits = self._pending
        self.clear()
        self._save(conflict, resolved(edits, conflict, choices))

    def __panel__(self):
        return pmui.Paper(self.table, self.choices, pn.Row(self.use_mine, self.keep_theirs, self.save_choices),
                          visible=self.param.visible,
                          sx={"p": 2, "borderLeft": "4px solid #ed6c02"}, sizing_mode="stretch_width")


CHOICE_CSS = """
table.choice { border-collapse: collapse; margin: 8px 0; font-size: .875rem; }
table.choice th, table.choice td { text-align: left; padding: 4px 12px 4px 0; vertical-align: top; }
table.choice th { font-weight: 500; opacity: .7; }
"""

