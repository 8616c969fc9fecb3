"""The one place where text becomes HTML on the page.

Whatever a person, a link, the database or a model supplies reaches the page in one of two
ways, and only through this module:

- as text: `Text`, `alert`, and any plain string given to an `HTML` pane, escaped here;
- as Markdown from a model (Genie's text, Claude's summary): `Markdown`, rendered with raw HTML
  turned off and then cleaned by nh3, so only formatting survives.

Markup of our own is built by `html()` from a constant template whose placeholders MarkupSafe
escapes, so a value can never become markup. `tests/test_markup.py` holds the rest of the
dashboard to this: no other module creates HTML, Markdown or Alert panes or calls `Markup`.
"""
from __future__ import annotations

import re
from typing import Iterable

import nh3
import panel as pn
import panel_material_ui as pmui
import param
from markdown_it import MarkdownIt
from markupsafe import Markup, escape

__all__ = ["HTML", "Markdown", "Markup", "Text", "alert", "clean_markdown", "html", "join", "literal_markdown"]


def html(template: str, /, *args, **kwargs) -> Markup:
    """Markup from a constant `template`; each value is escaped unless it is Markup already."""
    return Markup(template).format(*args, **kwargs)


def join(parts: Iterable, separator: str = "") -> Markup:
    """Pieces of markup joined; plain strings among them are escaped."""
    return Markup(separator).join(parts)


def as_markup(value) -> Markup:
    """Markup stays markup; anything else becomes its escaped text."""
    if isinstance(value, Markup):
        return value
    return escape("" if value is None else str(value))


class HTML(pn.pane.HTML):
    """An HTML pane that shows a plain string as text: only Markup (from `html()`) is markup."""

    def _transform_object(self, obj) -> dict:
        return super()._transform_object(str(as_markup(obj)))


TEXT_STYLE = {"white-space": "pre-wrap", "overflow-wrap": "anywhere"}


def Text(value: str = "", **params) -> HTML:  # noqa: N802 - a pane factory, named like one
    """Text as typed (line breaks kept), never interpreted as markup."""
    return HTML(str(value), styles={**TEXT_STYLE, **params.pop("styles", {})}, **params)


# -- Markdown from models ------------------------------------------------------------------

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])
MARKDOWN_TAGS = {"p", "br", "hr", "em", "strong", "del", "code", "pre", "blockquote", "ul", "ol", "li", "a",
                 "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td"}
MARKDOWN_ATTRIBUTES = {"a": {"href", "title"}, "th": {"style"}, "td": {"style"}, "ol": {"start"}}


def clean_markdown(text: str | None) -> Markup:
    """Markdown to HTML with raw HTML shown as text, then cleaned with nh3 (kept tags and
    attributes only, links to http(s) and mail only, each link marked noopener)."""
    rendered = _MARKDOWN.render(text or "")
    return Markup(nh3.clean(rendered, tags=MARKDOWN_TAGS, attributes=MARKDOWN_ATTRIBUTES,
                            url_schemes={"http", "https", "mailto"}, link_rel="noopener noreferrer nofollow",
                            filter_style_properties={"text-align"}))


class Markdown(HTML):
    """Markdown a model wrote (Genie's answer, Claude's summary), rendered safely and styled like
    Panel's Markdown pane."""

    _stylesheets = pn.pane.Markdown._stylesheets

    def _transform_object(self, obj) -> dict:
        return super()._transform_object(obj if isinstance(obj, Markup) else clean_markdown(obj))

    def _process_param_change(self, params):
        if "css_classes" in params:
            params["css_classes"] = ["markdown", *params["css_classes"]]
        return super()._process_param_change(params)


# -- Material alerts -----------------------------------------------------------------------

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)


def literal_markdown(text: str | None) -> str:
    """`text` written so that a Markdown renderer shows it exactly: every ASCII punctuation mark
    backslash-escaped (CommonMark allows it for all of them, `<` and `&` included) and leading
    indentation made of no-break spaces, so nothing becomes a tag, a link, an entity or code."""
    escaped = _PUNCTUATION.sub(r"\\\1", "" if text is None else str(text))
    return _INDENT.sub(lambda m: "\u00a0" * len(m.group()), escaped)


def alert(message, *, severity: str = "warning", **params) -> pmui.Alert:
    """A Material alert showing `message` as text: a string, or a string parameter (then it is
    hidden while the string is empty). Material renders an alert's text as Markdown, hence the
    escaping."""
    if isinstance(message, param.Parameter):
        params.setdefault("visible", message.rx.bool())
        message = message.rx.pipe(literal_markdown)
    else:
        message = literal_markdown(message)
    return pmui.Alert(object=message, severity=severity, **{"sizing_mode": "stretch_width", **params})
