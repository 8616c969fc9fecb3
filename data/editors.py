"""Who may change things: listed e-mails, or '*' for everyone. Everyone else only reads."""
from __future__ import annotations


class EditorPolicy:
    """One list of editors (ORDER_EDITORS for orders, ASSISTANT_EDITORS for verified questions)."""

    def __init__(self, editors: tuple[str, ...]):
        self.editors = {e.lower() for e in editors}

    def can_edit(self, user: str) -> bool:
        return "*" in self.editors or (user or "").lower() in self.editors
