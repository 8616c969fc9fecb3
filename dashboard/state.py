"""App-level state shared by every workspace of one browser session."""
from __future__ import annotations

import getpass

import param

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


class AppState(param.Parameterized):
    """Who is signed in and how the app is connected; workspaces receive this object."""

    user = param.String(default="", doc="Signed-in user (e-mail on Databricks Apps).")
    connection = param.String(default="", doc="How the app reaches its database, for people.")
