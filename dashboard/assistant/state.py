"""What one browser session's chat remembers: who asks, the Genie conversation it continues, and
the insights it has shown."""
from __future__ import annotations

import param

import logging

from data.assistant import Answer, Assistant, Conversation, Failure
from data.assistant.history import History, Summary, Turn
from data.assistant.verified import VerifiedQuestions
from data.errors import classify
from data.insights import Insight, Insights

from ..state import AppState, follow

log = logging.getLogger(__name__)


TABS = ("chat", "insights", "verified", "dashboard")


class AssistantState(param.Parameterized):
    """One chat per browser session: its Genie conversation, who is asking, and the app's insights."""

    app = param.ClassSelector(class_=AppState, doc="The session's shared state (signed-in user).")
    busy = param.Boolean(default=False, doc="A question is being answered.")
    insights_version = param.Integer(default=0, doc="Bumped when any process finds or dismisses an insight.")
    show_dismissed = param.Boolean(default=False, label="Show dismissed",
                                   doc="The Insights list also shows dismissed insights, and who dismissed them.")
    insight_notice = param.String(default="", doc="What the last check or dismissal did, for the person.")
    answer = param.Integer(default=None, allow_None=True, doc="A shared answer to show (the link's ?answer=).")
    stored = param.Integer(default=None, allow_None=True,
                           doc="The stored conversation the chat continues (None until its first question).")
    conversations_version = param.Integer(default=0, doc="Bumped when this person's conversations change.")
    history_notice = param.String(default="", doc="Why a conversation could not be kept, opened or deleted.")

    tab = param.Selector(default="chat", objects=list(TABS),
                         doc="The chat, the insights, the verified questions, or the AI/BI dashboard.")

    LINK = {"answer": "answer", "tab": "tab"}      # parameter -> the link's argument

    verified_version = param.Integer(default=0, doc="Bumped when verified questions or their checks change.")

    def __init__(self, app: AppState, assistant: Assistant, insights: Insights | None = None,
                 history: History | None = None, verified: VerifiedQuestions | None = None, **params):
        super().__init__(app=app, **params)
        self.assistant = assistant
        self.verified = verified
        self.conversation = Conversation()
        self.history = history
        self.fresh = False               # the next question skips the answer cache (Run again)
        self.selection = None            # the next question is about this chart selection
        self.insights = insights
        self._unsubscribe = None
        if insights is not None and insights.feed is not None:
            self._unsubscribe = follow(insights.feed, lambda version: self.param.update(insights_version=version))

    def new_conversation(self) -> None:
        self.conversation = Conversation()
        self.stored = None

    # -- conversations that last ------------------------------------------------------------

    def record(self, result: Answer | Failure) -> int | None:
        """Keep the question and its answer in this person's conversation; the turn's id, or None
        (and a notice) when it could not be kept."""
        if self.history is None:
            return None
        user = self.app.user
        try:
            if self.stored is None:
                self.stored = self.history.start(user, result.question)
            turn = self.history.record(self.stored, user, result, genie_id=self.conversation.genie_id,
                                       acted_as=self.assistant.acting_as)
        except Exception as exc:  # the answer is on screen either way
            log.warning("conversation turn not kept: %s", type(exc).__name__)
            self.history_notice = f"This answer is not kept in your history: {classify(exc).message}"
            return None
        self.param.trigger("conversations_version")
        return turn

    def conversations(self) -> list[Summary]:
        if self.history is None:
            return []
        try:
            return self.history.conversations(self.app.user)
        except Exception as exc:
            self.history_notice = f"Your earlier conversations cannot be listed: {classify(exc).message}"
            return []

    def reopen(self, conversation_id: int | None = None) -> list[Turn]:
        """Continue one of this person's conversations (the latest when none is named); its turns."""
        if self.history is None:
            return []
        try:
            mine = self.history.conversations(self.app.user)          # the latest first
            if conversation_id is None and not mine:
                return []
            summary = mine[0] if conversation_id is None else next(
                (c for c in mine if c.conversation_id == conversation_id), None)
            turns = self.history.turns(summary.conversation_id, self.app.user) if summary else []
        except Exception as exc:
            self.history_notice = f"The conversation cannot be opened: {classify(exc).message}"
            return []
        if summary is None:
            self.history_notice = "That conversation is not yours, or it was deleted."
            return []
        self.conversation = Conversation(genie_id=summary.genie_id,
                                         first_question=turns[0].question if turns else None)
        self.stored = summary.conversation_id
        return turns

    def delete(self, conversation_id: int) -> bool:
        try:
            deleted = self.history.delete(conversation_id, self.app.user)
        except Exception as exc:
            self.history_notice = f"Not deleted: {classify(exc).message}"
            return False
        if deleted and conversation_id == self.stored:
            self.new_conversation()
        self.param.trigger("conversations_version")
        return deleted

    # -- verified questions -------------------------------------------------------------------

    def can_verify(self, answer: Answer) -> bool:
        return (self.verified is not None and answer.source == "genie" and bool(answer.sql)
                and self.verified.can_edit(self.app.user))

    def verify(self, answer: Answer) -> str:
        """Keep a helpful answer as a verified question; what happened, in a sentence."""
        try:
            self.verified.promote(self.app.user, answer.question, answer.sql, answer.frame, source=answer.source,
                                  log_id=answer.log_id)
        except Exception as exc:
            return f"Not verified: {classify(exc).message}"
        self.param.trigger("verified_version")
        return "Verified: Genie will be asked this again by each check."

    def shared(self) -> tuple[Turn | None, str]:
        """The answer the link names, as this person may see it."""
        if self.answer is None or self.history is None:
            return None, ""
        try:
            return self.history.shared(self.answer, self.app.user)
        except Exception as exc:
            return None, f"The shared answer cannot be shown: {classify(exc).message}"

    # -- insights -------------------------------------------------------------------------

    @param.depends("insights_version", "show_dismissed")
    def insight_list(self) -> list[Insight]:
        """Newest first: those nobody dismissed, or all of them with `show_dismissed`."""
        if self.insights is None:
            return []
        if self.show_dismissed:
            return self.insights.recent(include_dismissed=True)
        return self.insights.latest()

    def dismiss(self, insight_id: int) -> None:
        try:
            done = self.insights.dismiss(insight_id, self.app.user)
        except Exception as exc:  # the list stays as it was; the message is the app's
            self.insight_notice = f"Not dismissed: {classify(exc).message}"
            return
        self.insight_notice = "" if done else "Someone else dismissed it already."
        self._reread()

    def check_now(self) -> None:
        """Run the rules now (whichever process ran them last), and say what came of it."""
        try:
            result = self.insights.run_if_due(force=True)
        except Exception as exc:
            self.insight_notice = f"Not checked: {classify(exc).message}"
            return
        if result is None:
            self.insight_notice = "Another process of the app is checking right now; its findings will appear here."
            return
        new = len(result.new)
        self.insight_notice = (f"Checked: {len(result.findings)} finding{'s' if len(result.findings) != 1 else ''}, "
                               f"{new} new.")
        self._reread()

    def _reread(self) -> None:
        if self.insights.feed is not None:
            self.insights.feed.announce()     # every session of this process re-reads; others hear the NOTIFY
        else:
            self.param.trigger("insights_version")
