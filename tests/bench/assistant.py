"""Assistant overhead: what the app adds around Genie's and Claude's own time.

For each question the fake workspace answers COMPLETED on the first poll; we time from the moment
it sent COMPLETED to the answer fully shown (result fetched and typed, table and chart built,
Claude's summary streamed and follow-ups added, the chat's new messages rendered to Bokeh
models). The fake adds no delay of its own, so this is the app's overhead plus local HTTP round
trips. Then the same questions again: answered from the cache.

    python -m tests.bench.assistant [--questions 30]
"""
from __future__ import annotations

import argparse
import asyncio
import time

from bokeh.document import Document

from dashboard.assistant import AssistantState, AssistantView
from dashboard.state import AppState
from data.assistant import Assistant
from data.assistant.claude import Claude
from data.assistant.genie import Genie, RateLimiter
from data.assistant.guard import SqlGuard
from tests.bench.common import demo_backend, describe
from tests.fake_workspace import ENDPOINT, SPACE_ID, FakeWorkspace

QUERIES = [
    "SELECT city, total_viewers, conversion_rate FROM marketplace.city_investment ORDER BY total_viewers DESC LIMIT {n}",
    "SELECT status, count(*) AS orders FROM retail360.orders GROUP BY status ORDER BY orders DESC LIMIT {n}",
    "SELECT date_trunc('day', created_at)::date AS day, count(*) AS orders FROM retail360.orders "
    "GROUP BY 1 ORDER BY 1 DESC LIMIT {n}",
]


def answer_and_show(view: AssistantView, question: str) -> None:
    before = len(view.chat.objects)

    async def run():
        view.chat.send(question, user="bench", respond=False)
        await view.respond(question, "bench", view.chat)
    asyncio.run(run())
    document = Document()
    for message in view.chat.objects[before:]:
        message.get_root(document)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=30)
    args = parser.parse_args()
    with demo_backend() as backend:
        dsn = backend.embedded.admin_dsn(backend.settings.pg_database)
        with FakeWorkspace(query_dsn=dsn) as ws:
            ws.stream_pause = 0.0
            from databricks.sdk import WorkspaceClient
            w = WorkspaceClient(host=ws.url, token="dapi-fake-workspace-token", auth_type="pat")
            db, tables = backend.db, backend.tables
            assistant = Assistant(db, tables, SqlGuard(db, tables),
                                  genie=Genie(w, SPACE_ID, RateLimiter(10_000), first_poll=0.01),
                                  claude=Claude(w, ENDPOINT), timeout=30)
            view = AssistantView(state=AssistantState(AppState(user="bench"), assistant))
            view.__panel__()
            questions = []
            for i in range(args.questions):
                question = f"bench question {i}"
                ws.script(question, statuses=("COMPLETED",),
                          sql=QUERIES[i % len(QUERIES)].format(n=10 + i % 20))
                questions.append(question)
            answer_and_show(view, "warm-up question")
            overhead, total, cached = [], [], []
            for question in questions:
                started = time.monotonic()
                answer_and_show(view, question)
                done = time.monotonic()
                message = next(m for m in ws.genie_messages.values() if m["content"] == question)
                overhead.append(done - message["completed_at"])
                total.append(done - started)
            for question in questions:
                started = time.monotonic()
                answer_and_show(view, question)
                cached.append(time.monotonic() - started)
            view.new_conversation()
    print(describe("COMPLETED -> answer fully shown (app overhead + local round trips)", overhead))
    print(describe("question sent -> answer fully shown (fake Genie answers at once)", total))
    print(describe("cache hit -> answer fully shown", cached))


if __name__ == "__main__":
    main()
