"""What an answer shows in the chat: Genie's text, the row count and the SQL, the table, a chart,
Claude's summary, questions to ask next, thumbs up or down, and downloads.

An answer is the costliest thing the app draws, and every model in it is built, sent and walked
again at each later change of the page, so it is made of few of them: text and SQL are HTML, a
small result is an HTML table, and the question buttons and thumbs are one browser-drawn bar.
"""
from __future__ import annotations

import io
from typing import Callable

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param

from data.assistant import Answer, download
from data.assistant.selection import FilterCheck, Selection
from data.errors import classify

from ..markup import HTML, Markdown, alert, html, join, literal_markdown
from .charts import answer_chart

HTML_TABLE_ROWS = 20          # up to this many rows, a plain table; more get Tabulator's paging
FOLLOW_UPS = 3

ANSWER_CSS = """
details.sql { border: 1px solid rgba(128,128,128,.3); border-radius: 8px; padding: 6px 12px; margin: 4px 0; }
details.sql summary { cursor: pointer; font-weight: 500; }
details.sql pre { white-space: pre-wrap; font-size: .85rem; margin: 8px 0 4px; }
details.sql button { font: inherit; font-size: .8rem; cursor: pointer; border: 0; background: none; color: #1976d2;
                     padding: 2px 0; }
.meta { opacity: .75; margin: 4px 0; }
table.result { border-collapse: collapse; font-size: .875rem; margin: 4px 0; }
table.result th { text-align: left; font-weight: 600; border-bottom: 1px solid rgba(128,128,128,.45); }
table.result th, table.result td { padding: 5px 12px 5px 4px; }
table.result td.number { text-align: right; font-variant-numeric: tabular-nums; }
table.result tr + tr td { border-top: 1px solid rgba(128,128,128,.15); }
"""


class AnswerDetails(pn.custom.JSComponent):
    """The row count and source, and the SQL collapsed with a copy button, drawn by the browser as
    one model (a Material card with a Markdown pane and a button made five). Both are set as text."""

    meta = param.String(default="", doc="Rows, source and timing, in a line.")
    sql = param.String(default="", doc="The SQL that ran (or was tried); no SQL section when empty.")
    link = param.Integer(default=None, allow_None=True, doc="The stored answer's id: a link that opens it.")

    _esm = """
    export function render({ model, el }) {
      const draw = () => {
        el.replaceChildren()
        const meta = document.createElement("div")
        meta.className = "meta"
        meta.textContent = model.meta
        if (model.link !== null) {
          const link = document.createElement("a")
          link.className = "answer-link"
          link.href = "?workspace=assistant&answer=" + encodeURIComponent(String(model.link))
          link.target = "_blank"
          link.rel = "noopener"
          link.textContent = "Link to this answer"
          meta.append(" \u00b7 ", link)
        }
        el.appendChild(meta)
        if (!model.sql) return
        const details = document.createElement("details")
        details.className = "sql"
        const summary = document.createElement("summary")
        summary.textContent = "SQL"
        const code = document.createElement("pre")
        code.textContent = model.sql
        const copy = document.createElement("button")
        copy.textContent = "\u2398 Copy SQL"
        copy.addEventListener("click", () => {
          navigator.clipboard.writeText(model.sql).then(() => { copy.textContent = "Copied" })
        })
        details.append(summary, code, copy)
        el.appendChild(details)
      }
      draw()
      model.on(["meta", "sql", "link"], draw)
    }
    """
    _stylesheets = [ANSWER_CSS]


def _cell(value) -> tuple[str, bool]:
    """A result value as shown in the table, and whether it is a number (right-aligned)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "", False
    if isinstance(value, bool):
        return str(value), False
    if isinstance(value, int):
        return f"{value:,}", True
    if isinstance(value, float):
        return f"{value:,.2f}", True
    return str(value), False


def result_table(frame: pd.DataFrame):
    """A small result as a plain table (one model); a large one in Tabulator, ten rows a page."""
    if len(frame) > HTML_TABLE_ROWS:
        return pn.widgets.Tabulator(frame, show_index=False, disabled=True, pagination="local", page_size=10,
                                    sizing_mode="stretch_width", layout="fit_data_table")
    head = join(html("<th>{}</th>", str(c)) for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = [_cell(v.item() if hasattr(v, "item") else v) for v in record]
        rows.append(html("<tr>{}</tr>", join(html("<td class='number'>{}</td>", t) if number else
                                             html("<td>{}</td>", t) for t, number in cells)))
    return HTML(html("<table class='result'><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, join(rows)),
                stylesheets=[ANSWER_CSS], sizing_mode="stretch_width")


class QuestionBar(pn.custom.JSComponent):
    """Questions to ask next as buttons, and (for an answer) thumbs up and down, drawn by the browser
    as one model. A click sends {"ask": index} or {"vote": true/false}."""

    label = param.String(default="Ask next:", doc="Shown before the questions.")
    questions = param.List(default=[], doc="The questions, one button each (filled in when known).")
    votes = param.Boolean(default=False, doc="Offer thumbs up and down.")
    voted = param.String(default="", doc="What the thumbs say once used ('Thanks, noted.', or why not saved).")

    _esm = """
    export function render({ model, el }) {
      const bar = document.createElement("div")
      bar.className = "bar"
      el.appendChild(bar)
      const SVG = "http://www.w3.org/2000/svg"
      const icon = (path) => {
        const svg = document.createElementNS(SVG, "svg")
        svg.setAttribute("viewBox", "0 0 24 24")
        svg.setAttribute("width", "16")
        svg.setAttribute("height", "16")
        svg.setAttribute("aria-hidden", "true")
        const shape = document.createElementNS(SVG, "path")
        shape.setAttribute("fill", "currentColor")
        shape.setAttribute("d", path)
        svg.appendChild(shape)
        return svg
      }
      const UP = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z"
      const DOWN = "M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z"
      const button = (text, title, message, cls, path) => {
        const b = document.createElement("button")
        b.className = cls
        b.textContent = text
        if (path) b.prepend(icon(path))
        if (title) b.title = title
        b.addEventListener("click", () => model.send_msg(message))
        return b
      }
      const draw = () => {
        bar.replaceChildren()
        const asks = document.createElement("div")
        asks.className = "asks"
        if (model.questions.length) {
          const label = document.createElement("span")
          label.className = "label"
          label.textContent = model.label
          asks.appendChild(label)
        }
        model.questions.forEach((q, i) => asks.appendChild(button(q, null, {ask: i}, "ask")))
        bar.appendChild(asks)
        if (model.votes) {
          const thumbs = document.createElement("div")
          thumbs.className = "thumbs"
          if (model.voted) {
            const note = document.createElement("span")
            note.className = "note"
            note.textContent = model.voted
            thumbs.appendChild(note)
          } else {
            thumbs.appendChild(button("Helpful", "This answer helped", {vote: true}, "vote", UP))
            thumbs.appendChild(button("Not helpful", "This answer did not help", {vote: false}, "vote", DOWN))
          }
          bar.appendChild(thumbs)
        }
      }
      draw()
      model.on(["questions", "label", "votes", "voted"], draw)
    }
    """
    _stylesheets = ["""
.bar { display: flex; flex-direction: column; gap: 6px; font-family: Roboto, Helvetica, Arial, sans-serif; }
.asks { display: flex; flex-wrap: wrap; align-items: center; gap: 6px; }
.label, .note { opacity: .75; font-size: .875rem; }
button { font: 500 .8125rem Roboto, Helvetica, Arial, sans-serif; cursor: pointer; border-radius: 4px; }
button.ask { border: 1px solid rgba(25,118,210,.5); background: none; color: #1976d2; padding: 3px 9px; }
button.ask:hover, button.vote:hover { background: rgba(25,118,210,.04); }
button.vote { border: 0; background: none; color: #1976d2; padding: 4px 6px; text-transform: uppercase;
              display: inline-flex; align-items: center; gap: 6px; }
"""]

    def __init__(self, on_ask: Callable[[str], None], on_vote: Callable[[bool], str] | None = None, **params):
        super().__init__(votes=on_vote is not None, **params)
        self._on_ask, self._on_vote = on_ask, on_vote

    def _handle_msg(self, message) -> None:
        if not isinstance(message, dict):
            return
        if "ask" in message and 0 <= message["ask"] < len(self.questions):
            self._on_ask(self.questions[message["ask"]])
        elif "vote" in message and self._on_vote is not None and not self.voted:
            self.voted = self._on_vote(bool(message["vote"]))


def selection_note(selection: Selection, check: FilterCheck) -> pmui.Alert:
    """Whether the answer's SQL keeps to what was selected in the chart."""
    count = f"{len(selection.values):,} {selection.noun}"
    if check.keeps_to_selection:
        return alert(f"The SQL keeps to the {count} you selected.", severity="success")
    if check.filtered:
        left_out = sorted(check.missing)
        more = f" and {len(left_out) - 5:,} more" if len(left_out) > 5 else ""
        return alert(f"The SQL filters on {len(check.used):,} of the {count} you selected; it leaves out "
                     f"{', '.join(left_out[:5])}{more}.", severity="warning")
    return alert(f"The SQL does not filter on the {selection.noun} you selected, so the answer may cover others "
                 "too.", severity="warning")


class AnswerMessage:
    """The parts of an answer, built so the chat can add them in one change (see `show_chart`)."""

    def __init__(self, answer: Answer, ask: Callable[[str], None], feedback: Callable[[Answer, bool], None] | None,
                 *, taken: str = "", run_again: Callable[[str], None] | None = None, link: int | None = None,
                 after_vote: Callable[["AnswerMessage", bool], None] | None = None):
        """`taken`: when a stored result was taken (then Claude's parts are shown as stored);
        `feedback` None: read-only (a shared answer); `run_again`: offer to ask the question again."""
        self.answer, self.summary_text = answer, answer.summary or ""
        self._feedback, self._after_vote = feedback, after_vote
        self.next_steps = pn.Column(sizing_mode="stretch_width", visible=False)   # what a vote offers next
        self.summary = Markdown("", sizing_mode="stretch_width")
        self.chart_slot, self.chart = pn.Column(sizing_mode="stretch_width"), None
        rows = f"{answer.row_count:,} row{'s' if answer.row_count != 1 else ''}"
        cut = " (cut at 1,000 rows: more exist)" if answer.truncated else ""
        cut += f" ({answer.size_note})" if answer.size_note else ""
        source = {"genie": "Genie", "claude": "Claude's SQL", "sql": "your SQL"}[answer.source]
        meta = f"{rows}{cut} · {source}" + (f" · result taken {taken}" if taken else " · from the cache"
                                             if answer.cached else f" · {answer.seconds:.1f} s")
        parts = []
        if answer.text:
            parts.append(Markdown(answer.text, sizing_mode="stretch_width"))
        self.details = AnswerDetails(meta=meta, sql=answer.sql or "", link=link, sizing_mode="stretch_width",
                                     css_classes=["answer-meta"])
        parts.append(self.details)
        if answer.selection is not None and answer.filter_check is not None:
            parts.append(selection_note(answer.selection, answer.filter_check))
        if not answer.frame.empty:
            parts.append(result_table(answer.frame))
            chart = answer_chart(answer.frame, answer.question[:80])
            if chart is not None:
                parts.append(self.chart_slot)
                self.chart = pn.pane.Bokeh(chart, sizing_mode="stretch_width")
        parts.append(self.summary)
        self.unusual = Markdown("", sizing_mode="stretch_width", visible=False, css_classes=["answer-unusual"])
        parts.append(self.unusual)
        self.actions = QuestionBar(ask, self._vote if feedback is not None else None, sizing_mode="stretch_width")
        row = [self.actions]
        if run_again is not None:
            again = pmui.Button(label="Run again", icon="replay", variant="outlined", size="small")
            again.on_click(lambda _e: run_again(answer.question))
            row.append(again)
        if not answer.frame.empty:
            row += [pmui.FileDownload(callback=lambda k=kind: io.BytesIO(download(answer, self.summary_text, k)),
                                      filename=f"answer.{kind}", label=label, icon="download", size="small")
                    for kind, label in (("csv", "CSV"), ("xlsx", "Excel"))]
        parts.append(pn.Row(*row, sizing_mode="stretch_width"))
        parts.append(self.next_steps)
        self.layout = pn.Column(*parts, sizing_mode="stretch_width")
        if taken:                                   # a stored answer: Claude's parts as they were
            self.summary.object = answer.summary or ""
            self.show_unusual(*(answer.unusual or ("", "")))
            self.add_follow_ups(answer.follow_up_questions or [])

    def show_chart(self) -> None:
        """Call once the browser has drawn the message: a figure sent inside a new Material chat
        message fails to lay out ("reading 'top_panel'"), one added to it afterwards does not."""
        if self.chart is not None:
            self.chart_slot.objects = [self.chart]

    def _vote(self, positive: bool) -> str:
        try:
            self._feedback(self.answer, positive)
        except Exception as exc:  # the answer stays usable; the message is the app's, not the driver's
            return f"Not saved: {classify(exc).message}"
        if self._after_vote is not None:
            self._after_vote(self, positive)
        return "Thanks, noted."

    def offer(self, *parts) -> None:
        """Show what comes after a vote (verify the answer, or ask it another way)."""
        self.next_steps.param.update(objects=list(parts), visible=bool(parts))

    def show_unusual(self, what: str, confidence: str) -> None:
        """Claude's note on what stands out in the result, only when there is one."""
        if what:
            self.unusual.param.update(object=f"**Worth a look** ({confidence} confidence): {literal_markdown(what)}",
                                      visible=True)

    def add_follow_ups(self, questions: list[str]) -> None:
        self.actions.questions = list(questions or [])[:FOLLOW_UPS]
