"""The chat's frame: Material's ChatInterface with messages that build only what this chat shows.

Material's chat message builds, for every message and twice over, a text area for editing it and a
placeholder pane around its content, and a row of reaction icons, though this chat turns editing
and reactions off (our own thumbs are stored; the built-in icons would load from a CDN). A question
and its reply are two messages, so that was most of the server's time to put a question on screen.
"""
from __future__ import annotations

import panel as pn
import panel_material_ui as pmui
from panel.chat.icon import ChatReactionIcons

from ..upstream_fixes import require

# Never drawn (show_reaction_icons is off) and never changed: one for every message in the process.
NO_REACTIONS = ChatReactionIcons(options={})


# Message overrides these of Material's (and Panel's) message: an upgrade that renames one fails here.
require(pmui.ChatMessage, "_build_layout", "_update_object_pane", "_create_panel", "_update_chat_copy_icon",
        "_update_reaction_icons", "_handle_msg")


class Message(pmui.ChatMessage):
    """A chat message without the editing area, placeholder and reaction icons it would not show.
    With `show_edit_icon` on, it is Material's message as it is."""

    def __init__(self, object=None, **params):
        params.setdefault("show_reaction_icons", False)
        params.setdefault("show_edit_icon", False)
        if not params["show_reaction_icons"]:
            params.setdefault("reaction_icons", NO_REACTIONS)
        super().__init__(object, **params)

    def _build_layout(self) -> None:
        if self.show_edit_icon:
            return super()._build_layout()
        if getattr(self, "_composite", None) is not None:
            return                        # built already: Panel's __init__ and Material's both call this
        self._object_panel = self._original_object_panel = self._create_panel(self.object)
        self._composite = pn.Row()        # what Panel's select() and cleanup look into
        self.param.watch(self._update_object_pane, "object")
        self.param.watch(self._update_reaction_icons, "reaction_icons")
        self._update_chat_copy_icon()
        self._update_reaction_icons()

    def _update_object_pane(self, event=None) -> None:
        if self.show_edit_icon:
            return super()._update_object_pane(event)
        self._object_panel = self._create_panel(self.object, old=self._object_panel)
        self._update_chat_copy_icon()

    def _handle_msg(self, msg) -> None:
        if msg == "edit" and not self.show_edit_icon:
            return                        # nothing to edit with: a crafted message changes nothing
        super()._handle_msg(msg)


class Chat(pmui.ChatInterface):
    """Material's chat interface, sending `Message`s."""

    _message_type = Message
