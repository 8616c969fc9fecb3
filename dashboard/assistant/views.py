"""The Assistant workspace: a chat that asks Genie, shows the SQL, the table and a chart, streams
Claude's summary, and offers follow-ups, feedback and downloads."""
from __future__ import annotations

import asyncio
import html
import io
import json
import threading

import panel as pn
import panel_material_ui as pmui
import param

from data.assistant import Answer, Failure, download
from data.assistant.genie import STEPS

from .state import AssistantState
from ..widgets import LazyTabs
from .charts import answer_chart

STEP_TITLES = {"understanding": "Understanding the question", "writing": "Writing SQL",
               "running": "Running the query"}
MODES = {"genie": "Genie writes the SQL, Claude explains", "claude": "Claude writes the SQL (no Genie space)",
         "sql": "SQL only (/sql)"}


class AssistantView(pn.viewable.Viewer):
    state = param.ClassSelector(class_=AssistantState)

    def __init__(self, dashboard_url: str | None = None, **params):
        super().__init__(**params)
        self.dashboard_url = dashboard_url
        self.chat = pmui.ChatInterface(
            callback=self.respond, callback_user="Assistant", callback_exception="summary", show_rerun=False,
            show_undo=False, show_clear=False, placeholder_text="Working on it…",
            input_params={"placeholder": "Ask about cities, orders or products — or /sql SELECT …",
                          "max_length": 2000, "enable_upload": False},
            # Our own thumbs are stored; the built-in reaction icons would load from a CDN.
            message_params={"show_reaction_icons": False, "show_edit_icon": False},
            sizing_mode="stretch_width", height=680)
        self._welcome()

    # -- answering ------------------------------------------------------------------------

    async def respond(self, contents, user, instance) -> None:
        question = contents if isinstance(contents, str) else str(contents)
        state, assistant = self.state, self.state.assistant
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        push = lambda *event: loop.call_soon_threadsafe(events.put_nowait, event)  # noqa: E731
        steps = _Steps(instance)
        state.busy = True
        work = loop.run_in_executor(None, lambda: assistant.ask(
            state.app.user, question, state.conversation, on_status=lambda s: push("status", s),
            on_wait=lambda position, seconds: push("wait", position, seconds), cancel=cancel))
        try:
            while True:
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    steps.show(*getter.result())
                    continue
                getter.cancel()
                while not events.empty():
                    steps.show(*events.get_nowait())
                break
            result = await work
        except asyncio.CancelledError:   # the Stop button
            cancel.set()
            steps.finish(ok=False)
            instance.send("Stopped. Ask again whenever you like.", user="Assistant", respond=False)
            raise
        finally:
            state.busy = False
        steps.finish(ok=isinstance(result, Answer))
        if isinstance(result, Answer):
            await self._answer(result, instance, loop)
        else:
            await self._failure(result, instance, loop)

    async def _answer(self, answer: Answer, instance, loop) -> None:
        assistant = self.state.assistant
        summary = pn.pane.Markdown("", sizing_mode="stretch_width")
        message = _AnswerMessage(answer, summary, self._ask_button, self._feedback)
        instance.send(message.layout, user="Assistant", respond=False)
        message.show_chart()
        if assistant.claude is not None and not answer.frame.empty:
            summary.object = "_Summarising…_"
            text = await _stream_into(summary, lambda: assistant.summary(answer), loop)
            message.summary_text = text
        follow_ups = await loop.run_in_executor(None, assistant.follow_ups, answer)
        message.add_follow_ups(follow_ups)

    async def _failure(self, failure: Failure, instance, loop) -> None:
        parts = [pmui.Alert(object=failure.message, severity="info" if failure.outcome == "cancelled" else "warning",
                            sizing_mode="stretch_width")]
        if failure.text:
            parts.append(pn.pane.Markdown(failure.text, sizing_mode="stretch_width"))
        if failure.sql:
            parts.append(_sql_card(failure.sql))
        layout = pn.Column(*parts, sizing_mode="stretch_width")
        instance.send(layout, user="Assistant", respond=False)
        explanation, rephrasings = await loop.run_in_executor(None, self.state.assistant.explain, failure)
        if explanation:
            layout.append(pn.pane.Markdown(explanation, sizing_mode="stretch_width"))
        if rephrasings:
            layout.append(pn.pane.HTML("<span style='opacity:.75'>Try asking:</span>"))
            layout.append(pn.FlexBox(*(self._ask_button(q) for q in rephrasings)))

    def _ask_button(self, question: str) -> pmui.Button:
        button = pmui.Button(label=question, variant="outlined", size="small", margin=(2, 4))
        button.on_click(lambda _: self.chat.send(question, user=self.state.app.user or "You"))
        return button

    def _feedback(self, answer: Answer, positive: bool) -> None:
        self.state.assistant.feedback(self.state.app.user, answer, positive)

    def new_conversation(self, _=None) -> None:
        self.state.new_conversation()
        self.chat.clear()
        self._welcome()

    # -- layout ---------------------------------------------------------------------------

    def _toolbar(self):
        new = pmui.Button(label="New conversation", icon="add_comment", variant="outlined", size="small")
        new.on_click(self.new_conversation)
        mode = pmui.Chip(label=MODES[self.state.assistant.mode], icon="smart_toy", variant="outlined")
        return pn.Row(mode, new, align="start")

    def _welcome(self) -> None:
        """The chat's first message: what can be asked, what is missing, and starter questions."""
        assistant = self.state.assistant
        parts = [pn.pane.Markdown(
            "Ask about marketplace cities, today's orders or the fashion catalog in plain language, or run your own "
            "read-only query with `/sql SELECT …`. Answers come as a table and a chart; follow-ups continue the "
            "same conversation.", sizing_mode="stretch_width")]
        if assistant.missing:
            parts.append(pmui.Alert(
                object="To ask in plain language, set: " + "; ".join(assistant.missing) + ". Until then, "
                       "/sql SELECT … runs a read-only query on the app's tables (one statement, at most 1,000 rows).",
                title="Genie or Claude is not configured", severity="info", sizing_mode="stretch_width"))
        parts.append(pn.FlexBox(*(self._ask_button(q) for q in assistant.starter_questions()),
                                sizing_mode="stretch_width"))
        self.chat.send(pn.Column(*parts, sizing_mode="stretch_width"), user="Assistant", respond=False)

    def __panel__(self):
        chat = pn.Column(self._toolbar(), self.chat, sizing_mode="stretch_width")
        if not self.dashboard_url:
            return chat
        embed, published = self.dashboard_url
        dashboard = pn.Column(
            pn.pane.HTML(f'<a href="{html.escape(published)}" target="_blank" rel="noopener">Open the dashboard in '
                         "Databricks</a>"),
            pn.pane.HTML(f'<iframe src="{html.escape(embed)}" style="width:100%;height:760px;border:0" '
                         'title="AI/BI dashboard"></iframe>', sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        return LazyTabs([("Chat", lambda: chat), ("Dashboard", lambda: dashboard)])


class _Steps:
    """Genie's statuses as steps of one message: understanding, writing SQL, running it."""

    def __init__(self, instance):
        self.instance, self.current, self.stage = instance, None, None

    def show(self, kind: str, *event) -> None:
        if kind == "wait":
            position, seconds = event
            ahead = f"{position} question{'s' if position != 1 else ''} ahead" if position else "next in line"
            self._stage("waiting", f"Waiting for Genie ({ahead}, about {seconds:.0f} s): it answers at most a "
                                   "few questions a minute")
            return
        status = event[0]
        stage = STEPS.get(status, "running")
        if status == "CACHED" or stage in ("done", "failed"):
            return                       # a cached answer says so itself; no step message to build
        self._stage(stage, STEP_TITLES.get(stage, stage))
        if status == "QUERY_RESULT_EXPIRED":
            self.current.stream("The earlier result expired; running the query again.\n")

    def _stage(self, stage: str, title: str) -> None:
        if stage == self.stage:
            self.current.title = title
            return
        if self.current is not None:
            self.current.status = "success"
        self.stage = stage
        self.current = self.instance.add_step(title, user="Assistant", title=title, status="running")

    def finish(self, ok: bool) -> None:
        if self.current is not None:
            self.current.status = "success" if ok else "failed"


class _AnswerMessage:
    """What an answer shows: Genie's text, the SQL, the table, a chart, the summary, follow-ups,
    thumbs up or down, and downloads."""

    def __init__(self, answer: Answer, summary: pn.pane.Markdown, ask_button, feedback):
        self.answer, self.summary, self.summary_text = answer, summary, ""
        self.chart_slot, self.chart = pn.Column(sizing_mode="stretch_width"), None
        self._ask_button, self._feedback = ask_button, feedback
        rows = f"{answer.row_count:,} row{'s' if answer.row_count != 1 else ''}"
        cut = " (cut at 1,000 rows: more exist)" if answer.truncated else ""
        source = {"genie": "Genie", "claude": "Claude's SQL", "sql": "your SQL"}[answer.source]
        meta = f"{rows}{cut} · {source}" + (" · from the cache" if answer.cached else f" · {answer.seconds:.1f} s")
        parts = []
        if answer.text:
            parts.append(pn.pane.Markdown(answer.text, sizing_mode="stretch_width"))
        parts.append(pn.pane.HTML(f"<span style='opacity:.75'>{html.escape(meta)}</span>", css_classes=["answer-meta"]))
        if answer.sql:
            parts.append(_sql_card(answer.sql))
        if not answer.frame.empty:
            parts.append(pn.widgets.Tabulator(answer.frame, show_index=False, disabled=True, pagination="local",
                                              page_size=10, sizing_mode="stretch_width", layout="fit_data_table"))
            chart = answer_chart(answer.frame, answer.question[:80])
            if chart is not None:
                parts.append(self.chart_slot)
                self.chart = pn.pane.HoloViews(chart, sizing_mode="stretch_width")
        parts.append(summary)
        self.follow_ups = pn.FlexBox(sizing_mode="stretch_width")
        self.thanks = pn.pane.HTML("")
        up = pmui.Button(label="Helpful", icon="thumb_up", variant="text", size="small")
        down = pmui.Button(label="Not helpful", icon="thumb_down", variant="text", size="small")
        up.on_click(lambda _: self._vote(True, up, down))
        down.on_click(lambda _: self._vote(False, up, down))
        downloads = [pmui.FileDownload(callback=lambda k=kind: io.BytesIO(download(answer, self.summary_text, k)),
                                       filename=f"answer.{kind}", label=label, icon="download", size="small")
                     for kind, label in (("csv", "CSV"), ("xlsx", "Excel"))] if not answer.frame.empty else []
        parts += [self.follow_ups, pn.Row(up, down, *downloads, self.thanks)]
        self.layout = pn.Column(*parts, sizing_mode="stretch_width")

    def show_chart(self) -> None:
        """Call once the message is in the chat: a figure sent inside a new Material chat message
        fails to lay out in the browser ("reading 'top_panel'"), one added to it afterwards does not."""
        if self.chart is not None:
            self.chart_slot.objects = [self.chart]

    def _vote(self, positive: bool, up, down) -> None:
        try:
            self._feedback(self.answer, positive)
        except Exception as exc:  # the answer stays usable
            self.thanks.object = f"<span style='color:#d32f2f'>Not saved: {html.escape(str(exc))}</span>"
            return
        up.disabled = down.disabled = True
        self.thanks.object = "<span style='opacity:.75'>Thanks, noted.</span>"

    def add_follow_ups(self, questions: list[str]) -> None:
        if questions:
            self.follow_ups.objects = [pn.pane.HTML("<span style='opacity:.75'>Ask next:</span>"),
                                       *(self._ask_button(q) for q in questions)]


def _sql_card(sql: str) -> pmui.Card:
    copy = pmui.Button(label="Copy SQL", icon="content_copy", variant="text", size="small")
    copy.js_on_click(code=f"navigator.clipboard.writeText({json.dumps(sql)})")
    return pmui.Card(pn.pane.Markdown(f"```sql\n{sql}\n```", sizing_mode="stretch_width"), copy, title="SQL",
                     collapsed=True, sizing_mode="stretch_width")


async def _stream_into(target: pn.pane.Markdown, make_stream, loop) -> str:
    """Show text from a blocking iterator as it arrives; returns the whole text."""
    queue: asyncio.Queue = asyncio.Queue()

    def pump() -> None:
        try:
            for piece in make_stream():
                loop.call_soon_threadsafe(queue.put_nowait, piece)
        except Exception as exc:  # a missing summary must not hide the answer
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    loop.run_in_executor(None, pump)
    text = ""
    while (piece := await queue.get()) is not None:
        if isinstance(piece, Exception):
            target.object = f"_No summary: {getattr(piece, 'message', str(piece))}_"
            return ""
        text += piece
        target.object = text
    if not text:
        target.object = ""
    return text
