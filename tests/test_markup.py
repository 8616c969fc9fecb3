"""Text from people, links, the database and models reaches the page as text, or as Markdown
cleaned by nh3; markup is built only from constant templates. Checked three ways: the code
(only dashboard/markup.py makes markup), the renderers (hostile text through each path comes out
inert), and a property (any text through an alert reads back exactly)."""
from __future__ import annotations

import ast
import html as html_module
from html.parser import HTMLParser
from pathlib import Path

import panel as pn
import panel_material_ui as pmui
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.markup import HTML, Markdown, Text, alert, clean_markdown, html, join, literal_markdown

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"

HOSTILE = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=1</script>",
    '<svg onload="window.__xss=1"></svg>',
    '"><img src=x onerror=alert(1)>',
    "<a href=\"javascript:window.__xss=1\">click</a>",
    "[click](javascript:window.__xss=1)",
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "<style>*{display:none}</style>",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "    <b>indented like code</b>",
    "`<b>` *bold* _it_ # heading",
    '<a href="https://example.com" onclick="window.__xss=1">x</a>',
]

# Constructors that put HTML on the page, and who may call them.
MARKUP_MAKERS = {"HTML", "Markdown", "Str", "Alert", "Typography", "HTMLTemplateFormatter", "Markup", "RawHTML"}
OWNER = DASHBOARD / "markup.py"


class Elements(HTMLParser):
    """The tags and attributes of a piece of HTML, and its text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text += data


def parsed(markup: str) -> Elements:
    elements = Elements()
    elements.feed(str(markup))
    return elements


def assert_inert(markup: str) -> None:
    """No script, no frame, no style block, no event handler, no javascript: address."""
    for tag, attrs in parsed(markup).tags:
        assert tag not in ("script", "iframe", "style", "svg", "img", "object", "embed"), markup
        for name, value in attrs.items():
            assert not name.startswith("on"), markup
            assert not (value or "").strip().lower().startswith("javascript:"), markup


# -- the code ------------------------------------------------------------------------------

def dashboard_modules():
    return [p for p in DASHBOARD.rglob("*.py") if p != OWNER]


@pytest.mark.parametrize("path", dashboard_modules(), ids=lambda p: str(p.relative_to(DASHBOARD)))
def test_only_the_markup_module_makes_markup(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        owner = func.value if isinstance(func, ast.Attribute) else None
        # markup.HTML / markup.Markdown are the safe ones; pn.pane.* and pmui.* are not.
        from_library = owner is not None and ast.unparse(owner) in ("pn.pane", "pmui", "pn", "pn.widgets")
        if name in MARKUP_MAKERS and (from_library or name in ("Markup", "HTMLTemplateFormatter", "Str")):
            pytest.fail(f"{path.name}:{node.lineno} calls {ast.unparse(func)}; use dashboard.markup instead")
        if name == "html" and isinstance(func, ast.Name):
            template = node.args[0] if node.args else None
            assert isinstance(template, ast.Constant) and isinstance(template.value, str), \
                f"{path.name}:{node.lineno}: html() takes a constant template; values go in its placeholders"


@pytest.mark.parametrize("path", list(DASHBOARD.rglob("*.py")), ids=lambda p: str(p.relative_to(DASHBOARD)))
def test_browser_code_never_parses_strings_as_html(path):
    source = path.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "dangerouslySetInnerHTML"):
        assert sink not in source, f"{path.name} uses {sink}: set textContent instead"


# -- the renderers -------------------------------------------------------------------------

@pytest.mark.parametrize("payload", HOSTILE)
def test_a_plain_string_in_an_html_pane_is_text(payload):
    pane = HTML(payload)
    sent = html_module.unescape(pane._transform_object(pane.object)["object"])   # what the browser receives
    assert parsed(sent).tags == [] and parsed(sent).text == payload


@pytest.mark.parametrize("payload", HOSTILE)
def test_template_values_are_escaped(payload):
    markup = html("<b>{}</b> <i>{name}</i>", payload, name=payload)
    assert [t for t, _ in parsed(markup).tags] == ["b", "i"]
    assert parsed(markup).text == f"{payload} {payload}"
    assert parsed(join([payload, html("<br>")])).text == payload


@pytest.mark.parametrize("payload", HOSTILE)
def test_model_markdown_keeps_formatting_and_loses_the_rest(payload):
    cleaned = clean_markdown(f"**Revenue rose.**\n\n{payload}\n\n- one\n- [docs](https://example.com)")
    assert_inert(cleaned)
    tags = [t for t, _ in parsed(cleaned).tags]
    assert "strong" in tags and "li" in tags
    links = [a for t, a in parsed(cleaned).tags if t == "a"]
    assert all(a["href"].startswith("https://") and "noopener" in a["rel"] for a in links)
    pane = Markdown(payload)
    assert_inert(html_module.unescape(pane._transform_object(pane.object)["object"]))


def alert_html(widget: pmui.Alert) -> str:
    """The HTML Material's alert puts on the page (it renders its text as Markdown, then the
    browser decodes it and sets it as HTML)."""
    return html_module.unescape(widget._process_param_change({"object": widget.object})["object"])


@pytest.mark.parametrize("payload", HOSTILE)
def test_an_alert_shows_its_text_exactly(payload):
    shown = parsed(alert_html(alert(f"The link asks for city '{payload}', which does not exist here.")))
    assert {t for t, _ in shown.tags} <= {"p"}
    assert shown.text.strip() == f"The link asks for city '{payload}', which does not exist here."


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=80))
def test_any_text_in_an_alert_reads_back_exactly(text):
    shown = parsed(alert_html(alert(text)))
    assert {t for t, _ in shown.tags} <= {"p"}
    expected = " ".join(text.replace("\u00a0", " ").split())
    assert " ".join(shown.text.replace("\u00a0", " ").split()) == expected


def test_an_alert_bound_to_a_parameter_escapes_every_value_and_hides_when_empty():
    import param

    class Form(param.Parameterized):
        error = param.String(default="")

    form = Form()
    widget = alert(form.param.error, severity="error")
    assert widget.visible is False
    form.error = HOSTILE[0]
    assert widget.visible is True and parsed(alert_html(widget)).text.strip() == HOSTILE[0]


def test_text_keeps_line_breaks_and_shows_markup_as_typed():
    pane = Text("line one\n<b>line two</b>")
    assert pane.styles["white-space"] == "pre-wrap"
    assert parsed(html_module.unescape(pane._transform_object(pane.object)["object"])).text == \
        "line one\n<b>line two</b>"


def test_literal_markdown_escapes_every_markdown_and_html_character():
    assert literal_markdown("<a>*x*") == "\\<a\\>\\*x\\*"
    assert literal_markdown("  indented") == "\u00a0\u00a0indented"
    assert isinstance(pn.pane.HTML, type)
