"""What one browser session's chat remembers: who asks, and the Genie conversation it continues."""
from __future__ import annotations

import param

from data.assistant import Assistant, Conversation

from ..state import AppState


class AssistantState(param.Parameterized):
    """One chat per browser session: its Genie conversation and who is asking."""

    app = param.ClassSelector(class_=AppState, doc="The session's shared state (signed-in user).")
    busy = param.Boolean(default=False, doc="A question is being answered.")

    def __init__(self, app: AppState, assistant: Assistant, **params):
        super().__init__(app=app, **params)
        self.assistant = assistant
        self.conversation = Conversation()

    def new_conversation(self) -> None:
        self.conversation = Conversation()
