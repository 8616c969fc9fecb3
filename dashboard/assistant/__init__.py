"""Assistant workspace: a chat with Genie and Claude, answers as tables and charts, guarded SQL."""
from .state import AssistantState
from .views import AssistantView

__all__ = ["AssistantState", "AssistantView"]
