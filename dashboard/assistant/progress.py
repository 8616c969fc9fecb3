"""An answer's progress line (Genie's steps, updated in place) and Claude's text streamed into the
page at most ten times a second."""
from __future__ import annotations

import asyncio

from data.assistant.genie import STEPS
from data.errors import classify

from ..markup import HTML, Markdown, html, join

STEP_TITLES = {"understanding": "Understanding the question", "writing": "Writing SQL",
               "running": "Running the query"}


class Progress:
    """Genie's statuses as the steps of one line at the top of a reply (understanding, writing SQL,
    running it), updated in place."""

    MARKS = {"done": "\u2713", "running": "\u2026", "failed": "\u2717"}

    def __init__(self):
        self.pane = HTML("", sizing_mode="stretch_width", css_classes=["answer-steps"])
        self.steps: list[list[str]] = []           # [title, state] in order
        self.stage = None
        self.note = ""
        self.finished = False
        self._render()

    def show(self, kind: str, *event) -> None:
        if kind == "wait":
            position, seconds = event
            ahead = f"{position} question{'s' if position != 1 else ''} ahead" if position else "next in line"
            self._stage("waiting", f"Waiting for Genie ({ahead}, about {seconds:.0f} s): it answers at most a "
                                   "few questions a minute")
            return
        status = event[0]
        stage = STEPS.get(status, "running")
        if status == "CACHED" or stage in ("done", "failed"):
            return
        self._stage(stage, STEP_TITLES.get(stage, stage))
        if status == "QUERY_RESULT_EXPIRED":
            self.note = "The earlier result expired; running the query again."
            self._render()

    def _stage(self, stage: str, title: str) -> None:
        if stage == self.stage:
            self.steps[-1][0] = title
        else:
            if self.steps:
                self.steps[-1][1] = "done"
            self.stage = stage
            self.steps.append([title, "running"])
        self._render()

    def finish(self, ok: bool, cached: bool = False) -> None:
        self.finished = True
        if self.steps:
            self.steps[-1][1] = "done" if ok else "failed"
        elif cached:
            self.note = "From the cache."
        self._render()

    def _render(self) -> None:
        if not self.steps and not self.note:
            self.pane.object = "" if self.finished else html("<span style='opacity:.7'>Working on it\u2026</span>")
            return
        steps = join((html("<span class='step {}'>{} {}</span>", state, self.MARKS[state], title)
                      for title, state in self.steps), html(" &nbsp;·&nbsp; "))
        note = html("<div style='opacity:.75'>{}</div>", self.note) if self.note else ""
        self.pane.object = html("<div style='opacity:.8;font-size:.9rem'>{}</div>{}", steps, note)


STREAM_INTERVAL = 0.1      # seconds between updates of streamed text: tokens arriving meanwhile are shown together


async def stream_into(target: Markdown, make_stream, loop, pool) -> str:
    """Show text from a blocking iterator as it arrives, at most ten updates a second (each update
    renders the Markdown and sends it), read on a thread of `pool`; returns the whole text."""
    queue: asyncio.Queue = asyncio.Queue()

    def pump() -> None:
        try:
            for piece in make_stream():
                loop.call_soon_threadsafe(queue.put_nowait, piece)
        except Exception as exc:  # a missing summary must not hide the answer
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        loop.call_soon_threadsafe(queue.put_nowait, None)

    loop.run_in_executor(pool, pump)
    text, ended = "", False
    while not ended:
        pieces = [await queue.get()]
        while not queue.empty():
            pieces.append(queue.get_nowait())
        for piece in pieces:
            if piece is None:
                ended = True
            elif isinstance(piece, Exception):
                target.object = f"_No summary: {classify(piece).message}_"
                return ""
            else:
                text += piece
        target.object = text
        if not ended:
            await asyncio.sleep(STREAM_INTERVAL)
    return text
