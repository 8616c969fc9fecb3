"""The Verified tab: the questions editors verified, how each came out at the latest check, the score
and its trend, and Check now (which asks Genie each of them again)."""
from __future__ import annotations

import asyncio
from typing import Callable

import panel as pn
import panel_material_ui as pmui
import param

from data.assistant.verified import CheckRun, Verified
from data.errors import classify

from ..format import local_time, percent
from ..markup import Text
from ..widgets import notice
from .insights import InsightList
from .state import AssistantState

OUTCOME_WORDS = {"same_sql": "same SQL", "same_result": "same result, other SQL",
                 "different_result": "a different result", "failed": "no answer"}


def score_line(runs: list[CheckRun], timezone: str) -> str:
    """The latest score and the ones before it, e.g. 'Latest check 02 Dec 10:42: 3 of 4 still match (75%).'"""
    if not runs:
        return "Not checked yet."
    latest = runs[0]
    if not latest.total:
        return f"Latest check {local_time(latest.started_at, timezone)}: no verified questions."
    line = (f"Latest check {local_time(latest.started_at, timezone)}: {latest.matched} of {latest.total} still "
            f"match ({percent(latest.score, 0)}).")
    earlier = [percent(r.score, 0) for r in reversed(runs[1:]) if r.score is not None]
    return line + (f" Before: {' → '.join(earlier)}." if earlier else "")


def verified_item(verified: Verified, timezone: str) -> dict:
    checked = (f"latest check: {OUTCOME_WORDS[verified.last_outcome]} ({local_time(verified.last_checked, timezone)})"
               if verified.last_outcome else "not checked yet")
    meta = f"{verified.row_count:,} rows · verified by {verified.promoted_by} · {checked}"
    return {"id": verified.verified_id, "sentence": verified.question, "meta": meta, "dismissed": ""}


class VerifiedView(pn.viewable.Viewer):
    state = param.ClassSelector(class_=AssistantState)
    checking = param.Boolean(default=False, doc="A check is asking Genie now.")
    result = param.String(default="", doc="What the last check or removal did.")

    def __init__(self, ask: Callable[[str], None], timezone: str = "UTC", **params):
        super().__init__(**params)
        self.timezone = timezone
        verified = self.state.verified
        remove = self._remove if verified.can_edit(self.state.app.user) else None
        self.list = InsightList(ask, remove, dismiss_label="Remove", sizing_mode="stretch_width",
                                empty="No verified questions yet. Mark a helpful answer from Genie, then Verify it.")
        self.score = Text("", sizing_mode="stretch_width")
        self.check = pmui.Button(label="Check now", icon="fact_check", variant="outlined", size="small",
                                 disabled=self.state.assistant.genie is None,
                                 description="Ask Genie each verified question again")
        self.check.on_click(lambda _e: param.parameterized.async_executor(self._check))
        self.state.param.watch(lambda _e: self._refresh(), "verified_version")
        self._refresh()

    def _refresh(self) -> None:
        verified = self.state.verified
        try:
            questions, runs = verified.all(), verified.runs(6)
        except Exception as exc:
            self.result = f"The verified questions cannot be read: {classify(exc).message}"
            return
        self.list.questions = {v.verified_id: v.question for v in questions}
        self.list.items = [verified_item(v, self.timezone) for v in questions]
        needs = "" if self.state.assistant.genie else " Checks ask Genie again, so they need GENIE_SPACE_ID."
        self.score.object = score_line(runs, self.timezone) + needs

    def _remove(self, verified_id: int) -> None:
        try:
            self.state.verified.remove(verified_id, self.state.app.user)
        except Exception as exc:
            self.result = f"Not removed: {classify(exc).message}"
            return
        self.state.param.trigger("verified_version")

    async def _check(self) -> None:
        if self.checking or self.state.assistant.genie is None:
            return
        self.param.update(checking=True, result="Asking Genie each verified question again…")
        self.check.disabled = True
        try:
            run = await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.state.verified.check(self.state.assistant.genie))
        except Exception as exc:
            self.result = f"Not checked: {classify(exc).message}"
        else:
            self.result = ("Another process is checking right now; its results will appear here." if run is None
                           else f"Checked {run.total} question{'s' if run.total != 1 else ''}: {run.matched} still "
                                f"match{'es' if run.matched == 1 else ''}.")
        finally:
            self.checking = False
            self.check.disabled = False
            self.state.param.trigger("verified_version")

    def __panel__(self):
        return pn.Column(pn.Row(self.check, self.score, align="center", sizing_mode="stretch_width"),
                         notice(self.param.result, severity="info"), self.list, sizing_mode="stretch_width")
