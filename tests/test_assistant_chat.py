"""The chat's messages: what they show, and what they no longer build for every question."""
from __future__ import annotations

import panel as pn
import panel_material_ui as pmui
import pytest
from bokeh.document import Document

from dashboard.assistant.chat import Chat, Message
from dashboard.markup import Text

from .helpers import page_text


def shown_object(message):
    """The content the browser draws for a message (the model behind its content slot)."""
    root = message.get_root(Document())
    return root.data._object_panel


@pytest.fixture
def objects_built(monkeypatch):
    """How many Panel objects are made while a block runs."""
    made = []
    init = pn.viewable.Viewable.__init__

    def counting(self, **params):
        made.append(type(self).__name__)
        init(self, **params)
    monkeypatch.setattr(pn.viewable.Viewable, "__init__", counting)
    return made


def test_a_message_shows_what_it_is_given():
    message = Message(Text("Which city sells most?"), user="ana")
    assert page_text([message]) == "Which city sells most?"
    assert "Which city sells most?" in shown_object(message).text


def test_a_message_builds_no_editor_placeholder_or_reaction_icons_and_a_third_of_material_s_objects(objects_built):
    Message(Text("warm"), user="ana"), pmui.ChatMessage(Text("warm"), user="ana")
    objects_built.clear()
    message = Message(Text("one"), user="ana")
    ours = list(objects_built)
    assert not hasattr(message, "_edit_area") and not hasattr(message, "_placeholder")
    objects_built.clear()
    pmui.ChatMessage(Text("one"), user="ana", show_reaction_icons=False, show_edit_icon=False)
    material = list(objects_built)
    assert {"ChatAreaInput", "Placeholder", "ChatReactionIcons"} <= set(material)
    assert not {"ChatAreaInput", "Placeholder", "ChatReactionIcons"} & set(ours)
    assert len(ours) * 3 <= len(material), f"{len(ours)} objects for a message against Material's {len(material)}"


def test_changing_a_message_s_content_shows_the_new_content():
    message = Message(Text("Summarising…"), user="Assistant")
    message.get_root(Document())
    message.object = Text("Lyon sells most.")
    assert page_text([message]) == "Lyon sells most."
    [(root, _)] = message._models.values()
    assert "Lyon sells most." in root.data._object_panel.text


def test_an_edit_request_sent_from_the_browser_changes_nothing():
    """The chat offers no editing; a crafted 'edit' message must not swap the answer for a text box."""
    message = Message(Text("An answer"), user="Assistant")
    before = message._object_panel
    message._handle_msg("edit")
    assert message._object_panel is before and page_text([message]) == "An answer"


def test_with_editing_on_a_message_is_material_s_own():
    message = Message(Text("Editable"), user="ana", show_edit_icon=True)
    message._handle_msg("edit")
    assert message._object_panel is message._edit_area


def test_the_chat_sends_questions_and_replies_as_these_messages():
    chat = Chat(callback=lambda *_: None)
    chat.send(Text("How many orders today?"), user="ana", respond=False)
    chat.send(Text("About 1,200."), user="Assistant", respond=False)
    assert [type(m) for m in chat.objects] == [Message, Message]
    assert page_text(chat.objects) == "How many orders today?\nAbout 1,200."
