"""Turning figures into short, readable text (one place for units and rounding)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.0f} s"
    if seconds < 3600:
        return f"{sign}{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    if seconds < 86400:
        return f"{sign}{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"
    return f"{sign}{seconds // 86400:.0f} d {seconds % 86400 // 3600:.0f} h"


def percent(ratio: float | None, digits: int = 1) -> str:
    return "–" if ratio is None else f"{ratio * 100:.{digits}f}%"


def number(value: float | int | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def money(value: float | None, currency: str = "$") -> str:
    return "–" if value is None else f"{currency}{value:,.2f}"


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else plural_noun or noun + 's'}"


def local_time(moment: datetime | None, timezone: str) -> str:
    """A moment as people here read it, in the business time zone: '02 Dec 10:42'."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%d %b %H:%M")


def clipped(value, limit: int = 60) -> str:
    """A field's value in a sentence or a small table: '' for none, lines counted, long text cut."""
    if isinstance(value, (list, tuple)):
        return plural(len(value), "line")
    text = "(empty)" if value in (None, "") else str(value)
    return text if len(text) <= limit else text[:limit - 3] + "…"
