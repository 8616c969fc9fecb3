"""Insights in the Assistant workspace: the list (newest first, ask about one, dismiss it) and the
items the chat shows for them. A list is one browser-drawn model; every text is set as text."""
from __future__ import annotations

from typing import Callable

import panel as pn
import panel_material_ui as pmui
import param

from data.insights import Insight

from ..format import local_time
from ..markup import Text
from ..widgets import notice
from .state import AssistantState

RULE_TITLES = {"orders_pace": "Orders today", "city_conversion": "City conversion",
               "device_completion": "Device completion", "amenity_lift": "Amenity lift"}


def shown_confidence(value: float) -> str:
    """How sure the data is that this is not chance, without claiming certainty."""
    return "over 99.9% sure" if value >= 0.9995 else f"{value * 100:.1f}% sure"


def insight_item(insight: Insight, timezone: str = "UTC") -> dict:
    """What a list shows of one insight (plain values: the browser sets them as text)."""
    seen = local_time(insight.first_seen, timezone)
    meta = " · ".join(filter(None, [RULE_TITLES.get(insight.rule, insight.rule), f"seen {seen}" if seen else "",
                                    shown_confidence(insight.confidence)]))
    dismissed = (f"Dismissed by {insight.dismissed_by} at {local_time(insight.dismissed_at, timezone)}"
                 if insight.dismissed_at else "")
    return {"id": insight.insight_id, "sentence": insight.sentence, "meta": meta, "dismissed": dismissed}


class InsightList(pn.custom.JSComponent):
    """Cards of text with "Ask about this" and (in the workspace's lists) "Dismiss" or "Remove", drawn
    by the browser as one model: insights, and verified questions. A click sends {"ask": id} or
    {"dismiss": id}."""

    items = param.List(default=[], doc="Cards in order: id, sentence, meta, dismissed (a note, empty if not).")
    dismissable = param.Boolean(default=False, doc="Offer the second button on cards not dismissed.")
    dismiss_label = param.String(default="Dismiss", doc="The second button's label.")
    empty = param.String(default="", doc="Shown when there are no cards.")

    _esm = """
    export function render({ model, el }) {
      const list = document.createElement("div")
      list.className = "insights"
      el.appendChild(list)
      const button = (text, cls, message) => {
        const b = document.createElement("button")
        b.className = cls
        b.textContent = text
        b.addEventListener("click", () => model.send_msg(message))
        return b
      }
      const draw = () => {
        list.replaceChildren()
        if (!model.items.length && model.empty) {
          const none = document.createElement("div")
          none.className = "empty"
          none.textContent = model.empty
          list.appendChild(none)
        }
        for (const item of model.items) {
          const card = document.createElement("div")
          card.className = item.dismissed ? "insight dismissed" : "insight"
          const sentence = document.createElement("div")
          sentence.className = "sentence"
          sentence.textContent = item.sentence
          const meta = document.createElement("div")
          meta.className = "meta"
          meta.textContent = item.dismissed ? `${item.meta} · ${item.dismissed}` : item.meta
          const actions = document.createElement("div")
          actions.className = "actions"
          actions.appendChild(button("Ask about this", "ask", {ask: item.id}))
          if (model.dismissable && !item.dismissed) actions.appendChild(button(model.dismiss_label, "dismiss", {dismiss: item.id}))
          card.append(sentence, meta, actions)
          list.appendChild(card)
        }
      }
      draw()
      model.on(["items", "dismissable", "dismiss_label", "empty"], draw)
    }
    """
    _stylesheets = ["""
.insights { display: flex; flex-direction: column; gap: 8px; font-family: Roboto, Helvetica, Arial, sans-serif; }
.insight { border: 1px solid rgba(128,128,128,.3); border-left: 4px solid #ed6c02; border-radius: 6px; padding: 8px 12px; }
.insight.dismissed { border-left-color: rgba(128,128,128,.5); opacity: .7; }
.sentence { font-size: .95rem; line-height: 1.4; }
.meta, .empty { opacity: .7; font-size: .8125rem; margin-top: 2px; }
.actions { display: flex; gap: 8px; margin-top: 6px; }
button { font: 500 .8125rem Roboto, Helvetica, Arial, sans-serif; cursor: pointer; border-radius: 4px; padding: 3px 9px; }
button.ask { border: 1px solid rgba(25,118,210,.5); background: none; color: #1976d2; }
button.dismiss { border: 0; background: none; color: rgba(0,0,0,.6); text-transform: uppercase; }
button:hover { background: rgba(25,118,210,.04); }
"""]

    def __init__(self, on_ask: Callable[[str], None], on_dismiss: Callable[[int], None] | None = None,
                 questions: dict[int, str] | None = None, **params):
        super().__init__(dismissable=on_dismiss is not None, **params)
        self._on_ask, self._on_dismiss = on_ask, on_dismiss
        self.questions = dict(questions or {})     # insight id -> the question to ask about it

    def show(self, insights: list[Insight], timezone: str) -> None:
        self.questions = {i.insight_id: i.question for i in insights}
        self.items = [insight_item(i, timezone) for i in insights]

    def _handle_msg(self, message) -> None:
        if not isinstance(message, dict):
            return
        if message.get("ask") in self.questions:
            self._on_ask(self.questions[message["ask"]])
        elif self._on_dismiss is not None and message.get("dismiss") in self.questions:
            self._on_dismiss(message["dismiss"])


class InsightsView(pn.viewable.Viewer):
    """The Insights tab: what the watcher found, newest first; ask about one, dismiss it, or check now."""

    state = param.ClassSelector(class_=AssistantState)

    def __init__(self, ask: Callable[[str], None], **params):
        super().__init__(**params)
        insights = self.state.insights
        self.timezone = insights.timezone if insights is not None else "UTC"
        self.list = InsightList(ask, self.state.dismiss, sizing_mode="stretch_width",
                                empty="Nothing unusual found yet. The app checks orders, city conversion, devices and "
                                      "amenities every few minutes.")
        self.status = Text("", css_classes=["insight-status"], sizing_mode="stretch_width")
        self.state.param.watch(lambda _e: self._refresh(), ["insights_version", "show_dismissed"])
        self._refresh()

    def _refresh(self) -> None:
        self.list.show(self.state.insight_list(), self.timezone)
        run = self.state.insights.last_run() if self.state.insights is not None else None
        self.status.object = (f"Last checked {local_time(run['started_at'], self.timezone)} "
                              f"({run['findings']} finding{'s' if run['findings'] != 1 else ''}, "
                              f"{run['duration_ms']:,} ms)." if run else "Not checked yet.")

    def __panel__(self):
        check = pmui.Button(label="Check now", icon="refresh", variant="outlined", size="small")
        check.on_click(lambda _e: self.state.check_now())
        controls = pn.Row(pmui.Switch.from_param(self.state.param.show_dismissed), check, self.status,
                          align="center", sizing_mode="stretch_width")
        return pn.Column(controls, notice(self.state.param.insight_notice, severity="info"), self.list,
                         sizing_mode="stretch_width")
