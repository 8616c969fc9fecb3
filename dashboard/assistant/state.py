"""What one browser session's chat remembers: who asks, the Genie conversation it continues, and
the insights it has shown."""
from __future__ import annotations

import param

from data.assistant import Assistant, Conversation
from data.errors import classify
from data.insights import Insight, Insights

from ..state import AppState, follow


class AssistantState(param.Parameterized):
    """One chat per browser session: its Genie conversation, who is asking, and the app's insights."""

    app = param.ClassSelector(class_=AppState, doc="The session's shared state (signed-in user).")
    busy = param.Boolean(default=False, doc="A question is being answered.")
    insights_version = param.Integer(default=0, doc="Bumped when any process finds or dismisses an insight.")
    show_dismissed = param.Boolean(default=False, label="Show dismissed",
                                   doc="The Insights list also shows dismissed insights, and who dismissed them.")
    insight_notice = param.String(default="", doc="What the last check or dismissal did, for the person.")

    def __init__(self, app: AppState, assistant: Assistant, insights: Insights | None = None, **params):
        super().__init__(app=app, **params)
        self.assistant = assistant
        self.conversation = Conversation()
        self.insights = insights
        self._unsubscribe = None
        if insights is not None and insights.feed is not None:
            self._unsubscribe = follow(insights.feed, lambda version: self.param.update(insights_version=version))

    def new_conversation(self) -> None:
        self.conversation = Conversation()

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
