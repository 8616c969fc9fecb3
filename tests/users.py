"""Simulated people for load and fault tests: each opens a real session (tests/wire.py) and walks
the app's main paths until time is up, reading for a while between clicks.

One round of the script:

    change the city -> Orders -> next page of the grid -> edit a note -> Catalog -> next page of
    products -> Assistant -> ask a question -> Marketplace

An interaction's latency runs from the click to the update that shows its result (the funnel's
new title, the next rows, "notes saved (version …)", the next cards, the question in the chat); a question's
answer (Genie, then Claude's summary) is timed separately, to the end of the summary.

Each step ends one of three ways: its result is shown; a message says why not (the database is
down, Genie failed: `Refused`); or nothing is shown in time (`NoUpdate`), which a person would
call a hang. Every edit is recorded with its unique note and what the page said, so fault tests
can check the database against what people were told.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field

from .wire import Closed, Model, NoUpdate, Session

WORKSPACES = ("Marketplace", "Orders", "Catalog", "Assistant", "System")
QUESTIONS = ("Which cities have the most viewers?", "How many orders by status?", "Top cities by revenue")
ANSWERED = "Summary: the result has"        # the fake Claude's summary starts so
ORDERS_PAGE = 100
CATALOG_PAGE = 24
# What the page says when the database cannot answer (data/errors.py).
DATABASE_TROUBLE = ("The database cannot be reached", "The database is unavailable",
                    "All database connections are busy", "The database took too long", "Nothing was saved")
# What the assistant says when Genie or Claude fail (it degrades; it does not hang).
ASSISTANT_TROUBLE = ("Genie could not answer", "Genie did not", "Genie stopped", "Genie&#x27;s result",
                     "Genie's result", "Genie is busy", "Genie cancelled", "No answer within", "No summary")


class Refused(Exception):
    """The page showed why the action did not happen."""


@dataclass
class Step:
    kind: str
    started: float                # perf_counter seconds
    outcome: str                  # "ok", "refused" (a message was shown), "hang" or "closed"
    seconds: float | None = None
    detail: str = ""              # which workspace, what the page said
    round: int = 0                # 0: the person's first round, when every workspace is built
    who: str = ""


@dataclass
class Results:
    answers: list[float] = field(default_factory=list)           # question -> summary shown
    opened: list[float] = field(default_factory=list)            # session open (page + socket + document)
    errors: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    edits: list[tuple[str, str]] = field(default_factory=list)   # (unique note, "saved"/"refused"/"conflict"/"hang")
    held: int = 0
    warmed: int = 0                    # people who finished their first round
    steady_from: float | None = None   # when everyone had: the steady state starts
    until: float = float("inf")        # when people stop

    def in_steady_state(self, step: Step) -> bool:
        """Taken once everyone had arrived, by a person past their first round."""
        return self.steady_from is not None and step.started >= self.steady_from and step.round > 0

    def latencies(self, steady: bool) -> dict[str, list[float]]:
        """Latency per kind of the steps in the steady state (or in the first rounds)."""
        found: dict[str, list[float]] = defaultdict(list)
        for step in self.steps:
            if step.outcome == "ok" and self.in_steady_state(step) == steady:
                found[step.kind].append(step.seconds)
        return found


class User:
    # The model that shows a workspace is on screen: sent when its view is built.
    SHOWN_BY = {"Marketplace": "AutocompleteInput", "Orders": "DataTabulator", "Catalog": "MultiChoice",
                "Assistant": "ChatAreaInput", "System": "query-latency"}

    def __init__(self, session: Session, rng: random.Random, name: str, results: Results):
        self.session, self.rng, self.name, self.results = session, rng, name, results
        self.menu = next(m for m in session.find_all("TabMenu") if "Marketplace" in (m.attributes.get("items") or []))
        self._messages: dict[str, set[str]] = {}      # step -> models that showed its last refusal

    def _messages_showing(self, step: str, trouble) -> set[str]:
        found = set()
        for model_id in self._messages.get(step, ()):
            model = self.session.models.get(model_id)
            text = str(model.attributes.get("text", "")) if model else ""
            if model and model.attributes.get("visible", True) is not False and any(t in text for t in trouble):
                found.add(model_id)
        return found

    async def _act(self, step: str, events, shows, *, trouble=DATABASE_TROUBLE, **options):
        """Act; return the latency when the result showed, raise `Refused` when a message said why not.
        A message already on screen that stays (the same failure again) sends nothing new: after a
        short wait, it counts as shown."""
        shows = [shows] if isinstance(shows, str) else list(shows)
        showing = self._messages_showing(step, trouble)
        try:
            latency = await self.session.act(events, shows=[*shows, *trouble], **options,
                                             **({"timeout": 5} if showing else {}))
        except NoUpdate:
            if showing and self._messages_showing(step, trouble):
                raise Refused("the message stayed on screen") from None
            raise
        if not any(self.session.saw(s) for s in shows):
            self._messages[step] = {m.id for m in self.session.models.values()
                                    if any(t in str(m.attributes.get("text", "")) for t in trouble)}
            raise Refused(next((t for t in trouble if self.session.saw(t)), "a message"))
        self._messages.pop(step, None)
        return latency

    # -- the steps ----------------------------------------------------------------------------

    def _slots(self) -> list[Model]:
        """The workspace slots beside the tab menu (LazyTabs: a Column per tab, the shown one visible)."""
        s = self.session
        component = s.component_of(self.menu)
        for column in s.find_all("Column"):
            children = [c.get("id") for c in column.attributes.get("children", []) if isinstance(c, dict)]
            if len(children) == 2 and children[0] == component.id:
                body = s.models[children[1]]
                return [s.models[c["id"]] for c in body.attributes.get("children", [])]
        return []

    def _shown(self, index: int) -> bool:
        slots = self._slots()
        return (len(slots) == len(WORKSPACES) and slots[index].attributes.get("visible", True) is not False
                and bool(slots[index].attributes.get("children")))

    async def open_workspace(self, name: str) -> float:
        index = WORKSPACES.index(name)
        return await self.session.act(self.session.tab_click(self.menu, index), shows=self.SHOWN_BY[name],
                                      done=lambda: self._shown(index))

    async def change_city(self) -> float:
        box = self.session.find("AutocompleteInput", label="City")
        # Not a city the funnel already shows (or showed before a failure): its title would not change,
        # so no update would say the result arrived, although the page shows it.
        shown = self._funnel_texts()
        city = self.rng.choice([c for c in box.attributes["options"][1:] if c != box.attributes.get("value")
                                and not any(t in text for t in self._city_texts(c) for text in shown)])
        return await self._act("city", self.session.set_value(box, "value", city), self._city_texts(city))

    @staticmethod
    def _city_texts(city: str) -> tuple[str, str]:
        """What the overview shows once a city's funnel arrived: its chart's title, or that it has none."""
        return f"funnel: {city},", f"No visitors for {city} "

    def _funnel_texts(self) -> list[str]:
        return [m.attributes["text"] for m in self.session.models.values()
                if isinstance(m.attributes.get("text"), str)
                and ("funnel: " in m.attributes["text"] or "No visitors for " in m.attributes["text"])]

    def _grid(self) -> tuple[Model, Model, Model]:
        """The orders grid, its data source and its pager (the first pager built after it)."""
        s = self.session

        def columns(table: Model) -> list[str]:
            data = s.models[table.attributes["source"]["id"]].attributes.get("data") or {}
            return [entry[0] for entry in data.get("entries", [])]
        table = next((t for t in s.find_all("DataTabulator") if {"order_id", "notes"} <= set(columns(t))), None)
        number = lambda m: int(m.id.lstrip("p"))  # noqa: E731 - ids count up as models are made
        pager = min((p for p in s.find_all("Pagination") if table and number(p) > number(table)), key=number,
                    default=None)
        if pager is None:             # inside a coroutine a bare StopIteration would become a RuntimeError
            raise LookupError("the orders grid has not reached this session")
        return table, s.models[table.attributes["source"]["id"]], pager

    async def page_orders(self) -> float:
        _, _, pager = self._grid()
        page = (pager.attributes.get("value") or 0) + 1
        if page >= pager.attributes["count"]:
            page = 0
        return await self._act("grid", self.session.set_value(pager, "value", page),
                               f"Rows {page * ORDERS_PAGE + 1:,}\u2013")

    async def edit_note(self) -> float:
        table, source, _ = self._grid()
        row = self.rng.randrange(ORDERS_PAGE)
        note = f"Called {self.name} at {time.strftime('%H:%M:%S')} ({self.rng.randrange(10**9)})"
        outcome = "hang"
        try:
            latency = await self._act("edit", self.session.cell_edit(table, source, row, "notes", note),
                                      (": notes saved", "since you loaded it."))
            outcome = "saved" if self.session.saw(": notes saved") else "conflict"
            return latency
        except Refused:
            outcome = "refused"
            raise
        finally:
            self.results.edits.append((note, outcome))

    async def page_catalog(self) -> float:
        s = self.session
        pager = next(p for p in s.find_all("Pagination") if p.attributes.get("size") == "small")   # the cards'
        page = (pager.attributes.get("value") or 0) + 1
        return await self._act("catalog", s.set_value(pager, "value", page), f"{page * CATALOG_PAGE + 1:,}\u2013")

    async def ask(self) -> float:
        s = self.session
        question = f"{self.rng.choice(QUESTIONS)} (#{self.rng.randrange(10**6)})"      # never from the cache
        box = s.find("ChatAreaInput")
        shown, answered = await s.act(s.chat_send(box, question), shows=question,
                                      then=(ANSWERED, *ASSISTANT_TROUBLE, *DATABASE_TROUBLE), timeout=45)
        if not s.saw(ANSWERED):
            raise Refused("the assistant said why it could not answer")
        self.results.answers.append(answered)
        return shown

    def script(self):
        """(kind, detail, step) in the order a person takes them."""
        yield "change city", "", self.change_city
        yield "open workspace", "Orders", lambda: self.open_workspace("Orders")
        yield "page orders grid", "", self.page_orders
        yield "edit a cell", "", self.edit_note
        yield "open workspace", "Catalog", lambda: self.open_workspace("Catalog")
        yield "page catalog", "", self.page_catalog
        yield "open workspace", "Assistant", lambda: self.open_workspace("Assistant")
        yield "ask assistant", "", self.ask
        yield "open workspace", "Marketplace", lambda: self.open_workspace("Marketplace")


async def walk(url: str, results: Results, seed: int, think: tuple[float, float], user: str) -> None:
    """One person: open the app, then walk the script until `results.until`."""
    rng = random.Random(seed)
    started = time.perf_counter()
    try:
        session = await Session.open(url, headers={"X-Forwarded-Email": user})
        await session.quiet(0.3, deadline=time.perf_counter() + 20)
    except Exception as exc:          # the page, the socket or the document failed: count it
        results.errors.append(f"open: {type(exc).__name__}: {exc}")
        return
    results.opened.append(time.perf_counter() - started)
    results.held += 1
    person = User(session, rng, user, results)
    rounds = 0
    try:
        while time.perf_counter() < results.until and not session.closed:
            for kind, detail, step in person.script():
                if time.perf_counter() >= results.until:
                    break
                began = time.perf_counter()
                try:
                    latency = await step()
                    results.steps.append(Step(kind, began, "ok", latency, detail, rounds, user))
                except Refused as refused:
                    results.errors.append(f"{kind}: the page said {refused}")
                    results.steps.append(Step(kind, began, "refused", detail=f"{detail} {refused}".strip(),
                                              round=rounds, who=user))
                except NoUpdate:
                    results.errors.append(f"{kind}: nothing shown within the time-out")
                    results.steps.append(Step(kind, began, "hang", detail=detail, round=rounds, who=user))
                except Closed:
                    results.errors.append(f"{kind}: the session closed")
                    results.steps.append(Step(kind, began, "closed", detail=detail, round=rounds, who=user))
                    return
                except Exception as exc:
                    results.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                    results.steps.append(Step(kind, began, "hang", detail=f"{detail} {exc!r}".strip(), round=rounds, who=user))
                await asyncio.sleep(rng.uniform(*think))
            rounds += 1
            if rounds == 1:
                results.warmed += 1
    finally:
        await session.close()


async def run_load(url: str, users: int, seconds: float, *, think: tuple[float, float] = (1.0, 5.0),
                   ramp: float = 10.0, seed: int = 0, results: Results | None = None,
                   after_warm_up: bool = False, warm_up_limit: float = 600) -> Results:
    """`users` people arriving over `ramp` seconds. They walk for `seconds` from the start or, with
    `after_warm_up`, for `seconds` after every person has finished a first round (the steady state;
    `results.steady_from` marks its start). Person i is user{seed + i}: loads run side by side need
    seeds far enough apart, or two "people" would be one person typing the same notes twice."""
    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure(None, max_clients=max(users * 2, 10))   # every person's page at once
    results = results or Results()
    started = time.perf_counter()
    if not after_warm_up:
        results.until = started + seconds
    tasks = []
    for i in range(users):
        tasks.append(asyncio.ensure_future(walk(url, results, seed + i, think, f"user{seed + i}@example.com")))
        await asyncio.sleep(ramp / max(users, 1))
    if after_warm_up:
        failed = lambda: sum(e.startswith("open:") for e in results.errors)  # noqa: E731
        while results.warmed + failed() < users and time.perf_counter() - started < warm_up_limit:
            await asyncio.sleep(0.2)
        results.steady_from = time.perf_counter()
        results.until = results.steady_from + seconds
    await asyncio.gather(*tasks)
    return results
