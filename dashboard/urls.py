"""Keeping state in the URL, so a view can be shared and reloaded; bad values become messages."""
from __future__ import annotations

from typing import Callable

import panel as pn
import param


def sync_with_url(obj: param.Parameterized, mapping: dict[str, str], notify: Callable[[str], None]) -> None:
    """Two-way sync of `obj`'s parameters with query arguments (parameter -> argument name).
    A value in the link that the parameter refuses is reported through `notify` and ignored."""
    location = pn.state.location
    if location is None:
        return

    def on_error(values: dict) -> None:
        for name, value in values.items():
            try:
                obj.param.update(**{name: value})
            except Exception:
                current = getattr(obj, name)
                notify(f"The link asks for {mapping[name]} '{value}', which does not exist here; "
                       f"showing {current}.")

    location.sync(obj, mapping, on_error=on_error)
