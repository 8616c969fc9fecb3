"""App-level state shared by every workspace of one browser session."""
from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Callable

import panel as pn
import param

from data.assistant.selection import Selection

# Header names as Tornado canonicalises them (pn.state.headers is a plain dict).
USER_HEADERS = ("X-Forwarded-Email", "X-Forwarded-Preferred-Username", "X-Forwarded-User")


def signed_in_user(headers: dict | None) -> str:
    """The Databricks Apps user from the forwarded headers, else the local OS user."""
    for name in USER_HEADERS:
        value = (headers or {}).get(name)
        if value:
            return value
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers)
        return "local user"


ALL_CITIES = "All cities"


@dataclass(frozen=True)
class ChartQuestion:
    """A question asked from a chart about what was selected in it, for the Assistant to answer."""

    question: str
    selection: Selection


class AppState(param.Parameterized):
    """What every workspace shares in one browser session; workspaces receive this object."""

    user = param.String(default="", doc="Signed-in user (e-mail on Databricks Apps).")
    connection = param.String(default="", doc="How the app reaches its database, for people.")
    workspace = param.Selector(default=None, objects=[], doc="The workspace on screen.")
    city = param.Selector(default=ALL_CITIES, objects=[ALL_CITIES], doc="The city every view filters on.")
    message = param.String(default="", doc="A notice for the user (a bad link, say); empty when none.")
    handoff = param.ClassSelector(class_=ChartQuestion, default=None, allow_None=True,
                                  doc="A question another workspace asks the Assistant (then shown there).")

    LINK = {"workspace": "workspace", "city": "city"}        # parameter -> the link's argument

    def set_cities(self, cities: list[str]) -> None:
        self.param.city.objects = [ALL_CITIES, *cities]

    @property
    def city_filter(self) -> str | None:
        """The city as the data layer takes it: None for all cities."""
        return None if self.city == ALL_CITIES else self.city

    def ask_assistant(self, question: ChartQuestion) -> None:
        """Open the Assistant and ask it `question` there."""
        self.handoff = question
        self.workspace = "assistant"

    def notify(self, text: str) -> None:
        """Add a notice (several bad values in one link each get their sentence)."""
        self.message = f"{self.message} {text}".strip() if text not in self.message else self.message


def follow(feed, changed: Callable[[int], None]) -> Callable[[], None]:
    """Call `changed(version)` on this session's document after each announcement of `feed` (a
    `ChangeFeed`, which calls from its own thread), until the session closes; returns a function
    that stops following."""
    document = pn.state.curdoc
    live = document is not None and document.session_context is not None

    def announced(version: int) -> None:
        if live:
            document.add_next_tick_callback(lambda: changed(version))
        else:
            changed(version)
    unsubscribe = feed.subscribe(announced)
    if live:
        pn.state.on_session_destroyed(lambda _context: unsubscribe())
    return unsubscribe
