"""The page's link: which workspace, tab and filters it shows, read and checked in one place.

`read_link` takes the query arguments as the server received them and returns the values this
app understands, typed, with a sentence for everything it could not use: an argument it does not
read (with the name it probably meant), one given twice, a value that is not one of the choices
(case does not matter), not a whole number in range, too long or holding control characters.
Nothing else in the app reads the link. `PageLink` hands each workspace its values when it is
built and keeps the address bar equal to what the page shows, so a view can be shared.

One name per idea across workspaces: `tab` is the tab of the workspace in the link.
"""
from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence
from urllib.parse import urlencode

import param

CHOICE, INTEGER, TEXT = "choice", "integer", "text"
MAX_LENGTH = 200                  # characters of any one value
SHOWN_LENGTH = 60                 # characters of a bad value quoted back in a message
BIGGEST_ID = 2**63 - 1            # PostgreSQL BIGINT


@dataclass(frozen=True)
class Argument:
    name: str
    noun: str                     # how a message names it
    kind: str
    bounds: tuple[int, int] = (0, BIGGEST_ID)


ARGUMENTS = {a.name: a for a in (
    Argument("workspace", "workspace", CHOICE),
    Argument("tab", "tab", CHOICE),
    Argument("city", "city", CHOICE),
    Argument("range", "period", CHOICE),
    Argument("type", "property type", CHOICE),
    Argument("weeks", "number of weeks", INTEGER, (2, 52)),
    Argument("order", "order", INTEGER),
    Argument("q", "search", TEXT),
    Argument("product", "product", INTEGER, (1, BIGGEST_ID)),
    Argument("user", "user", INTEGER, (1, BIGGEST_ID)),
    Argument("answer", "shared answer", INTEGER, (1, BIGGEST_ID)),
)}
# The order in which arguments are checked: a tab is one of its workspace's tabs.
ORDER = ("workspace", "tab", "city", "range", "type", "weeks", "order", "q", "product", "user", "answer")


@dataclass
class Link:
    values: dict[str, object] = field(default_factory=dict)   # argument -> typed value
    messages: list[str] = field(default_factory=list)


def read_link(arguments: Mapping[str, Sequence[bytes | str]], choices: Mapping[str, Callable[[], Sequence[str]]],
              tabs: Mapping[str, Sequence[str]], default_workspace: str) -> Link:
    """The link's arguments as this app takes them. `choices[name]()` lists a choice argument's
    values (asked only when the link has that argument); `tabs[workspace]` a workspace's tabs."""
    link = Link()
    given: dict[str, str] = {}
    for name, values in arguments.items():
        if name.startswith("bokeh-"):          # the server's own (session id, autoload)
            continue
        argument = ARGUMENTS.get(name)
        if argument is None:
            link.messages.append(_unknown(name))
            continue
        texts = [_text(v) for v in values]
        if len(set(texts)) > 1:
            link.messages.append(f"The link gives {argument.noun} more than once ({', '.join(map(_quoted, texts))}), "
                                 "so none of them is used.")
            continue
        given[name] = texts[0] if texts else ""
    workspace = default_workspace
    for name in ORDER:
        if name not in given:
            continue
        argument, text = ARGUMENTS[name], given[name]
        if name == "tab":
            options = tabs.get(workspace, ())
            if not options:
                link.messages.append(f"The link asks for tab {_quoted(text)}, but {workspace} has no tabs.")
                continue
            value = _check(argument, text, lambda: options)
        else:
            value = _check(argument, text, choices.get(name))
        if isinstance(value, Problem):
            link.messages.append(value.message)
            continue
        link.values[name] = value
        if name == "workspace":
            workspace = value
    return link


@dataclass(frozen=True)
class Problem:
    message: str


def _check(argument: Argument, text: str, options: Callable[[], Sequence[str]] | None):
    """The typed value, or the Problem with it."""
    noun, shown = argument.noun, _quoted(text)
    if not text.strip():
        return Problem(f"The link's {noun} is empty, so it is not used.")
    if len(text) > MAX_LENGTH:
        return Problem(f"The link's {noun} is {len(text):,} characters long (at most {MAX_LENGTH}), so it is not used.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in text):
        return Problem(f"The link's {noun} {shown} contains control or invisible characters, so it is not used.")
    if argument.kind == INTEGER:
        low, high = argument.bounds
        if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
            return Problem(f"The link asks for {noun} {shown}, which is not a whole number from {low:,} to "
                           f"{high:,}; showing the default.")
        return int(text)
    if argument.kind == CHOICE:
        listed = list(options()) if options else []
        match = choose(text, listed)
        if match is None:
            return Problem(f"The link asks for {noun} {shown}, which does not exist here; showing the default.")
        return match
    return text


def choose(text: str, options: Sequence[str]) -> str | None:
    """The option `text` names: the same, or the same but for case."""
    if text in options:
        return text
    folded = [o for o in options if o.casefold() == text.strip().casefold()]
    return folded[0] if len(folded) == 1 else None


def _unknown(name: str) -> str:
    shown = _quoted(name)
    near = difflib.get_close_matches(name.lower(), ARGUMENTS, n=1, cutoff=0.6)
    hint = f" (did you mean '{near[0]}'?)" if near else f"; it reads {', '.join(ORDER)}"
    synonyms = {"view": "tab", "search": "q", "workspace_tab": "tab"}
    if name.lower() in synonyms:
        hint = f" (did you mean '{synonyms[name.lower()]}'?)"
    return f"The link has {shown}, which this app does not read{hint}."


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _quoted(text: str) -> str:
    printable = "".join(c if c.isprintable() else "\N{REPLACEMENT CHARACTER}" for c in text)
    return f"'{printable[:SHOWN_LENGTH]}…'" if len(printable) > SHOWN_LENGTH else f"'{printable}'"


# -- the address bar -------------------------------------------------------------------

class PageLink:
    """Hands each state object the link's values for it, and writes what the page shows back into
    the address bar (a value equal to its parameter's default is left out, to keep links short).
    `tab` follows the workspace on screen."""

    def __init__(self, link: Link, workspace_of: Callable[[], str], location=None):
        self.link = link
        self._workspace_of = workspace_of
        self._location = location
        self._query: dict[str, str] = {}
        self._tabs: dict[str, param.Parameterized] = {}

    def initial(self, mapping: Mapping[str, str], workspace: str | None = None) -> dict:
        """Parameter values from the link for an object following `mapping` (parameter -> argument);
        `tab` only for the link's own workspace."""
        values = {}
        for parameter, argument in mapping.items():
            if argument not in self.link.values:
                continue
            if argument == "tab" and workspace != self.link.values.get("workspace", self._workspace_of()):
                continue
            values[parameter] = self.link.values[argument]
        return values

    def follow(self, obj: param.Parameterized, mapping: Mapping[str, str], workspace: str | None = None) -> None:
        """Keep the address bar up to date with `obj`'s parameters (parameter -> argument)."""
        for parameter, argument in mapping.items():
            if argument == "tab":
                self._tabs[workspace] = obj
                if workspace == self._workspace_of():
                    self._put("tab", obj, parameter)
                obj.param.watch(lambda e, w=workspace: w == self._workspace_of() and self._put("tab", obj, "tab"),
                                parameter)
                continue
            self._put(argument, obj, parameter, write=False)
            obj.param.watch(lambda e, a=argument, p=parameter: self._put(a, obj, p), parameter)
        self._write()

    def workspace_changed(self, workspace: str) -> None:
        state = self._tabs.get(workspace)
        if state is not None:
            self._put("tab", state, "tab")
        else:
            self._query.pop("tab", None)
            self._write()

    def _put(self, argument: str, obj: param.Parameterized, parameter: str, write: bool = True) -> None:
        value = getattr(obj, parameter)
        if value is None or value == obj.param[parameter].default:
            self._query.pop(argument, None)
        else:
            self._query[argument] = str(value)
        if write:
            self._write()

    @property
    def search(self) -> str:
        ordered = {name: self._query[name] for name in ORDER if name in self._query}
        return f"?{urlencode(ordered)}" if ordered else ""

    def _write(self) -> None:
        if self._location is not None and self._location.search != self.search:
            self._location.search = self.search
