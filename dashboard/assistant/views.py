"""The Assistant workspace: a chat that asks Genie, shows the SQL, the table and a chart, streams
Claude's summary, and offers follow-ups, feedback and downloads."""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import panel as pn
import panel_material_ui as pmui
import param

from data.assistant import Answer, Failure
from data.errors import classify

from .. import upstream_fixes
from ..format import local_time
from ..markup import HTML, Markdown, Text, alert, html
from ..widgets import LazyTabs, notice
from .answer import AnswerDetails, AnswerMessage, QuestionBar
from .chat import Chat
from .insights import InsightList, InsightsView
from .progress import Progress, stream_into
from .state import AssistantState
from .verified import VerifiedView

log = logging.getLogger(__name__)

# Genie and Claude calls wait on the network, up to the SDK's retry limit when a service misbehaves:
# they get threads of their own, so a slow Databricks never starves the health checks, the CSV
# export or anything else that uses the event loop's default pool.
ASSISTANT_THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="assistant")
WELCOME_INSIGHTS = 3     # the newest insights the chat's first message shows
REPLAYED_TURNS = 10      # the latest questions of a kept conversation shown when it is opened
MODES = {"genie": "Genie writes the SQL, Claude explains", "claude": "Claude writes the SQL (no Genie space)",
         "sql": "SQL only (/sql)"}


class AssistantView(pn.viewable.Viewer):
    state = param.ClassSelector(class_=AssistantState)

    def __init__(self, dashboard_url: str | None = None, timezone: str = "UTC", **params):
        """`timezone`: the business time zone, in which kept results and insights say when."""
        super().__init__(**params)
        self.dashboard_url, self.timezone = dashboard_url, timezone
        self.chat = Chat(
            callback=self.respond, callback_user="Assistant", callback_exception="summary", show_rerun=False,
            show_undo=False, show_clear=False, placeholder_threshold=0,   # the reply's progress line instead
            input_params={"placeholder": "Ask about cities, orders or products — or /sql SELECT …",
                          "max_length": 2000, "enable_upload": False},
            # What a person types is shown as text: Material's own submit renders it as Markdown.
            on_submit=self._submitted,
            # Only the last dozen messages are on the page (older ones load when scrolled to): each
            # answer adds a table, a chart and buttons, and a long chat would slow every change.
            load_buffer=6,
            sizing_mode="stretch_width", height=680)
        self.tabs: LazyTabs | None = None
        self._told: set[int] = set()           # insights this chat has shown or knew of when it opened
        self._loaded = False
        self._charts_to_draw: list[AnswerMessage] = []
        self._welcome()
        self._replay(self.state.reopen())          # the conversation this person had open
        self._show_shared()
        self.state.param.watch(lambda _e: self._tell_new_insights(), "insights_version")
        self.state.app.param.watch(lambda _e: self._take_handoff(), "handoff")
        self._take_handoff()
        # A message added before the browser has drawn the page never shows: wait for it.
        pn.state.onload(self._page_loaded)

    # -- answering ------------------------------------------------------------------------

    async def respond(self, contents, user, instance) -> None:
        """Answer in one reply message: its progress line follows Genie's steps in place, then the
        answer (or what went wrong) is added below it. Every new chat message or part changes the
        page's structure, which Bokeh pays for by walking the whole document, so a reply adds as
        few as it can."""
        question = contents if isinstance(contents, str) else str(contents)
        state, assistant = self.state, self.state.assistant
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        push = lambda *event: loop.call_soon_threadsafe(events.put_nowait, event)  # noqa: E731
        progress = Progress()
        reply = pn.Column(progress.pane, sizing_mode="stretch_width")
        instance.send(reply, user="Assistant", respond=False)
        sent_at = loop.time()
        state.busy = True
        fresh, state.fresh = state.fresh, False
        selection, state.selection = state.selection, None
        work = loop.run_in_executor(ASSISTANT_THREADS, lambda: assistant.ask(
            state.app.user, question, state.conversation, on_status=lambda s: push("status", s),
            on_wait=lambda position, seconds: push("wait", position, seconds), cancel=cancel, fresh=fresh,
            selection=selection))
        try:
            while True:
                getter = asyncio.ensure_future(events.get())
                done, _ = await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    progress.show(*getter.result())
                    continue
                getter.cancel()
                while not events.empty():
                    progress.show(*events.get_nowait())
                break
            result = await work
        except asyncio.CancelledError:   # the Stop button
            cancel.set()
            progress.finish(ok=False)
            reply.append(Text("Stopped. Ask again whenever you like.", sizing_mode="stretch_width"))
            raise
        finally:
            state.busy = False
        progress.finish(ok=isinstance(result, Answer), cached=getattr(result, "cached", False))
        if isinstance(result, Answer):
            await self._answer(result, reply, loop, sent_at)
        else:
            await self._failure(result, reply, loop)

    async def _answer(self, answer: Answer, reply: pn.Column, loop, sent_at: float) -> None:
        assistant = self.state.assistant
        message = AnswerMessage(answer, self._ask, self._feedback, after_vote=self._after_vote)
        # The reply was drawn while Genie worked (a cached answer waits for it), so the chart goes in
        # with the rest of the answer, in one change of the page; the summary after it is laid out.
        await upstream_fixes.after_message_drawn(sent_at)
        message.show_chart()
        reply.append(message.layout)
        await upstream_fixes.after_message_drawn()
        if assistant.claude is not None and not answer.frame.empty:
            message.summary.object = "_Summarising…_"
            message.summary_text = await stream_into(message.summary, lambda: assistant.summary(answer), loop,
                                                       ASSISTANT_THREADS)
        follow_ups, unusual = await asyncio.gather(
            loop.run_in_executor(ASSISTANT_THREADS, assistant.follow_ups, answer),
            loop.run_in_executor(ASSISTANT_THREADS, assistant.unusual, answer))
        message.show_unusual(*unusual)
        message.add_follow_ups(follow_ups)
        await loop.run_in_executor(ASSISTANT_THREADS, assistant.record_usage, answer)
        message.details.link = await loop.run_in_executor(ASSISTANT_THREADS, self.state.record, answer)

    async def _failure(self, failure: Failure, reply: pn.Column, loop) -> None:
        parts = [alert(failure.message, severity="info" if failure.outcome == "cancelled" else "warning")]
        if failure.text:
            parts.append(Markdown(failure.text, sizing_mode="stretch_width"))
        if failure.sql:
            parts.append(AnswerDetails(meta="The SQL that was tried:", sql=failure.sql, sizing_mode="stretch_width"))
        explained = Markdown("", sizing_mode="stretch_width", visible=False)
        rephrase = QuestionBar(self._ask, label="Try asking:", sizing_mode="stretch_width")
        reply.append(pn.Column(*parts, explained, rephrase, sizing_mode="stretch_width"))
        explanation, rephrasings = await loop.run_in_executor(ASSISTANT_THREADS, self.state.assistant.explain,
                                                              failure)
        explained.param.update(object=explanation or "", visible=bool(explanation))
        rephrase.questions = list(rephrasings or [])
        await loop.run_in_executor(ASSISTANT_THREADS, self.state.assistant.record_usage, failure)
        if failure.outcome != "cancelled":
            await loop.run_in_executor(ASSISTANT_THREADS, self.state.record, failure)

    # -- insights -------------------------------------------------------------------------

    def _insight_list(self, insights) -> InsightList:
        view = InsightList(self._ask_from_insight, sizing_mode="stretch_width")
        view.show(insights, self.timezone)
        self._told.update(i.insight_id for i in insights)
        return view

    def _page_loaded(self) -> None:
        self._loaded = True
        self._draw_charts()
        self._tell_new_insights()

    def _tell_new_insights(self) -> None:
        """An insight found while this chat is open becomes a message in it."""
        if not self._loaded or self.state.insights is None:
            return
        new = [i for i in self._latest_insights() if i.insight_id not in self._told]
        if new:
            self.chat.send(pn.Column(Text(f"New insight{'s' if len(new) > 1 else ''}:"), self._insight_list(new),
                                     sizing_mode="stretch_width"), user="Insights", respond=False)

    def _ask_from_insight(self, question: str) -> None:
        self.state.tab = "chat"
        self._ask(question)

    def _submitted(self, event=None, _instance=None) -> None:
        self._ask(getattr(event, "new", None))

    def _ask(self, question: str | None) -> None:
        """Put the question in the chat as the person's message (as text) and answer it."""
        if question and question.strip():
            self.chat.send(Text(question), user=self.state.app.user or "You", respond=True)

    def _feedback(self, answer: Answer, positive: bool) -> None:
        self.state.assistant.feedback(self.state.app.user, answer, positive)

    def _after_vote(self, message: AnswerMessage, positive: bool) -> None:
        """Helpful: an editor may verify the answer. Not helpful: offer other ways to ask it."""
        answer = message.answer
        if positive:
            if self.state.can_verify(answer):
                verify = pmui.Button(label="Verify this answer", icon="verified", variant="outlined", size="small")
                verify.on_click(lambda _e: message.offer(Text(self.state.verify(answer))))
                message.offer(verify)
            return
        again = pmui.Button(label="Ask again", icon="replay", variant="outlined", size="small")
        again.on_click(lambda _e: self._run_again(answer.question))
        other_ways = QuestionBar(self._ask, label="Or ask it another way:", sizing_mode="stretch_width")
        message.offer(again, other_ways)

        async def fill() -> None:
            loop = asyncio.get_running_loop()
            other_ways.questions = list(await loop.run_in_executor(ASSISTANT_THREADS,
                                                                   self.state.assistant.rephrasings, answer))
        param.parameterized.async_executor(fill)

    def new_conversation(self, _=None) -> None:
        self.state.new_conversation()
        self.chat.clear()
        self._welcome()

    # -- conversations that last ------------------------------------------------------------

    def reopen(self, conversation_id: int | None = None) -> None:
        """Show one of this person's stored conversations (the latest when none is named) and
        continue it."""
        turns = self.state.reopen(conversation_id)
        if conversation_id is not None and not turns:
            return                                  # the notice says why
        self.chat.clear()
        self._welcome()
        self._replay(turns)

    def _replay(self, turns) -> None:
        """The conversation's latest questions and answers (older ones stay in its history: each
        message costs the page models, and a long conversation would slow every later change)."""
        if len(turns) > REPLAYED_TURNS:
            self.chat.send(Text(f"{len(turns) - REPLAYED_TURNS:,} earlier questions of this conversation are "
                                f"kept but not shown; the latest {REPLAYED_TURNS} follow."), user="Assistant",
                           respond=False)
            turns = turns[-REPLAYED_TURNS:]
        for turn in turns:
            self.chat.send(Text(turn.question), user=turn.user_name, respond=False)
            self.chat.send(self._stored_reply(turn), user="Assistant", respond=False)
        if self._loaded:
            self._draw_charts()

    def _stored_reply(self, turn, *, shared_by: str = "") -> pn.Column:
        """A kept answer as it was, saying when its result was taken, with Run again."""
        taken = local_time(turn.asked_at, self.timezone)
        if turn.outcome != "answered":
            return pn.Column(alert(turn.message or "This question was not answered.", severity="warning"),
                             Text(f"Asked {taken}."), sizing_mode="stretch_width")
        message = AnswerMessage(turn.as_answer(), self._ask, None if shared_by else self._feedback, taken=taken,
                                run_again=self._run_again, link=turn.turn_id, after_vote=self._after_vote)
        if turn.rating:
            message.actions.voted = "You marked this helpful." if turn.rating > 0 else "You marked this not helpful."
        self._charts_to_draw.append(message)
        return message.layout

    def _draw_charts(self) -> None:
        """Charts of replayed answers, once the browser has laid the messages out (see show_chart)."""
        if self._charts_to_draw:
            param.parameterized.async_executor(self._draw_charts_after_layout)

    async def _draw_charts_after_layout(self) -> None:
        await upstream_fixes.after_message_drawn()
        waiting, self._charts_to_draw = self._charts_to_draw, []
        for message in waiting:
            message.show_chart()

    def _take_handoff(self) -> None:
        """A question asked from a chart in another workspace: ask it here, with its selection."""
        question = self.state.app.handoff
        if question is None:
            return
        self.state.app.handoff = None
        self.state.tab = "chat"
        self.state.selection = question.selection
        self._ask(question.question)

    def _run_again(self, question: str) -> None:
        self.state.tab = "chat"
        self.state.fresh = True
        self._ask(question)

    def _show_shared(self) -> None:
        """The answer the link names, read-only, as a message of its own."""
        turn, why = self.state.shared()
        if turn is None and not why:
            return
        parts = [Text(f"Shared answer, asked by {turn.user_name}." if turn else "Shared answer")]
        if why:
            parts.append(alert(why, severity="info"))
        if turn is not None and not why:
            parts.append(self._stored_reply(turn, shared_by=turn.user_name))
        elif turn is not None:
            parts += [Text(turn.question), QuestionBar(self._run_again, label="", questions=[turn.question],
                                                       sizing_mode="stretch_width")]
        self.chat.send(pn.Column(*parts, sizing_mode="stretch_width"), user="Shared", respond=False)

    def _conversation_picker(self):
        """Earlier conversations: open one, or delete it."""
        picker = pmui.Select(label="Earlier conversations", options={}, value=None, size="small", width=320)
        open_button = pmui.Button(label="Open", icon="history", variant="outlined", size="small")
        delete_button = pmui.Button(label="Delete", icon="delete", variant="text", size="small", color="error")

        def refresh(*_events) -> None:
            options = {f"{local_time(c.updated_at, self.timezone)} · {c.title} ({c.turns})": c.conversation_id
                       for c in self.state.conversations()}
            picker.param.update(options=options, value=picker.value if picker.value in options.values() else None)
        refresh()
        self.state.param.watch(refresh, "conversations_version")
        open_button.on_click(lambda _e: picker.value is not None and self.reopen(picker.value))

        def delete(_event) -> None:
            if picker.value is not None and self.state.delete(picker.value) and self.state.stored is None:
                self.chat.clear()
                self._welcome()
        delete_button.on_click(delete)
        return picker, open_button, delete_button

    # -- layout ---------------------------------------------------------------------------

    def _toolbar(self):
        new = pmui.Button(label="New conversation", icon="add_comment", variant="outlined", size="small")
        new.on_click(self.new_conversation)
        mode = pmui.Chip(label=MODES[self.state.assistant.mode], icon="smart_toy", variant="outlined")
        if self.state.history is None:
            return pn.Row(mode, new, align="start")
        return pn.Column(pn.Row(mode, new, *self._conversation_picker(), align="start"),
                         notice(self.state.param.history_notice), sizing_mode="stretch_width")

    def _welcome(self) -> None:
        """The chat's first message: what can be asked, what is missing, and starter questions."""
        assistant = self.state.assistant
        parts = [Markdown(
            "Ask about marketplace cities, today's orders or the fashion catalog in plain language, or run your own "
            "read-only query with `/sql SELECT …`. Answers come as a table and a chart; follow-ups continue the "
            "same conversation.", sizing_mode="stretch_width")]
        if assistant.missing:
            parts.append(alert(
                "To ask in plain language, set: " + "; ".join(assistant.missing) + ". Until then, "
                "/sql SELECT … runs a read-only query on the app's tables (one statement, at most 1,000 rows).",
                title="Genie or Claude is not configured", severity="info"))
        parts.append(QuestionBar(self._ask, label="", questions=list(assistant.starter_questions()),
                                 sizing_mode="stretch_width"))
        if self.state.insights is not None:
            latest = self._latest_insights()
            self._told.update(i.insight_id for i in latest)
            if latest[:WELCOME_INSIGHTS]:
                parts += [Text("What changed recently:"), self._insight_list(latest[:WELCOME_INSIGHTS])]
        self.chat.send(pn.Column(*parts, sizing_mode="stretch_width"), user="Assistant", respond=False)

    def _latest_insights(self) -> list:
        try:
            return self.state.insights.latest()
        except Exception as exc:  # the chat works without them; the Insights tab says why
            log.warning("insights unavailable for the chat: %s", classify(exc).message)
            return []

    def __panel__(self):
        chat = pn.Column(self._toolbar(), self.chat, sizing_mode="stretch_width")
        tabs = {"chat": ("Chat", lambda: chat)}
        if self.state.insights is not None:
            tabs["insights"] = ("Insights", lambda: InsightsView(self._ask_from_insight, state=self.state))
        if self.state.verified is not None:
            tabs["verified"] = ("Verified", lambda: VerifiedView(self._ask_from_insight, self.timezone,
                                                                 state=self.state))
        if self.dashboard_url:
            embed, published = self.dashboard_url
            tabs["dashboard"] = ("Dashboard", lambda: pn.Column(
                HTML(html('<a href="{}" target="_blank" rel="noopener">Open the dashboard in Databricks</a>',
                          published)),
                HTML(html('<iframe src="{}" style="width:100%;height:760px;border:0" title="AI/BI dashboard">'
                          '</iframe>', embed), sizing_mode="stretch_width"),
                sizing_mode="stretch_width"))
        asked = self.state.tab
        self.state.param.tab.objects = list(tabs)
        if asked not in tabs:                  # a link to a tab this app has not got (no Genie, no dashboard)
            self.state.app.notify(f"The Assistant has no {asked} tab here, so the chat is shown.")
            self.state.tab = "chat"
        if len(tabs) == 1:
            return chat
        self.tabs = LazyTabs.of(self.state.param.tab, tabs)
        return self.tabs
