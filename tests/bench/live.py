"""Live grid rows under load: a colleague's commit to the highlighted cell in another session, and
the server CPU that costs.

    python -m tests.bench.live [--users 50] [--rate 20] [--observers 3] [--phases 4] [--phase-seconds 40]
                               [--profile DIR]

`python serve.py` (embedded PostgreSQL, default processes, Genie and Claude on the fake workspace,
as tests/bench/load.py starts it). A few observers (their own sessions and users) open the Orders
grid and stay on its first page. Then `--users` people walk tests/users.py's script, and once all
of them have finished their first round (and the catalog's background index build is over) the
steady state is cut into phases without and with a writer, in the order without, with, with,
without, … so that a cost drifting over the run weighs on both alike. The writer is one process
with its own connection committing `--rate` changes a second, each a plain `UPDATE … SET notes` of
one order on the observers' page, made as a colleague (`set_config('app.user', …, true)`, which
the audit trigger reads; data/sql/retail.sql), so the NOTIFY, the change feed and the grids' live
updates run as for anyone's change.

Each order is changed at most once a second: the writer walks the page's orders in turn (100
orders at 20 a second: each every 5 s). A grid shows others' changes at most once a second and
shows each row's latest value, so a value overwritten within the same second may legitimately
never be shown; with this spacing every committed value is the row's latest for 5 s, and one that
never reaches an observer is a miss (or, when the grid lags more than 5 s, superseded: counted
apart, and "that value or a newer one" is timed too).

Per observer and change: the commit's time (after COMMIT returned), the arrival of the patch that
carries the new value, and of the `cell_styles` update that gives its row the `live-change`
animation (the highlighted cell: the later of the two; a style that came first counts once the
value is there, as Panel's Tabulator re-applies the current cell_styles after each data patch). A
value whose row the next cell_styles leaves out is "shown without the highlight", and the messages
around the first such case are printed. The writer's process also LISTENs, so commit -> NOTIFY is
shown apart. Per phase: server CPU (serve.py and its workers), database CPU (the embedded
PostgreSQL, backends that exited included), the machine's other programs (a test suite running
meanwhile shows there), the load's interactions and their latency. The cost of the changes is
given two ways: the plain difference in server CPU, and, for a machine the changes saturate (the
server then gets no more CPU and does fewer interactions), the server CPU with the changes less
their interactions at the cost per interaction without. `--profile DIR` records each phase of
each server process with py-spy (the GIL holder's stacks, raw format).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import queue
import random
import re
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.bench.common import percentiles
from tests.bench.load import app_processes, cpu_seconds, served_with_workspace
from tests.users import Results, User, run_load
from tests.wire import Session

SCHEMA = "retail360"                         # RETAIL_SCHEMA's default
COLLEAGUE = "live-bench-colleague@example.com"
NOTE = "LIVEBENCH-{:06d} a colleague's note"
SEQ = re.compile(r"LIVEBENCH-(\d{6})")
PAGE = 100                                   # the grid's page size (tests/users.py ORDERS_PAGE)
GRACE = 5.0                                  # seconds after the last commit for its patches to arrive


# -- the writer's process: observers, writer and listener -----------------------------------------

class Observer(Session):
    """A session that records, for every colleague's value, when its patch arrived and when the
    `live-change` style reached its row."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.values: dict[int, float] = {}          # seq -> arrival of the patch carrying the value
        self.styled: dict[int, float] = {}          # seq -> arrival of the live-change style on its row
        self.unstyled: set[int] = set()             # a style update came after the value and left its row out
        self.same_message = 0                       # value and style in one PATCH-DOC
        self.live_lines = 0                         # "#…: notes changed by <colleague>" lines
        self.messages = 0
        self.examples: list[list[str]] = []         # the messages around a value left without its highlight
        self._pending: dict[int, list[int]] = {}    # row position -> seqs waiting for their style
        self._recent: deque[str] = deque(maxlen=6)  # what the last messages held, for the examples
        self._live_rows: set[int] = set()           # rows the table's current cell_styles animate
        self.style_first = 0                        # values whose style had arrived before them

    def _notify(self, arrival: float, raw: str) -> None:
        super()._notify(arrival, raw)
        self.messages += 1
        if "LIVEBENCH-" in raw or "cell_styles" in raw or COLLEAGUE in raw:
            self._record(arrival, json.loads(raw))
        if len(self.received) > 50:                 # nothing acts on this session: keep the tail
            del self.received[:-10]

    def _record(self, arrival: float, content: dict) -> None:
        in_this_message = set()
        summary = []
        for event in content.get("events", []):       # values first: a style may come in the same message
            if event.get("kind") != "ColumnsPatched":
                continue
            for column, changes in _entries(event.get("patches")):
                if column != "notes":
                    continue
                for position, value in changes:
                    found = SEQ.search(str(value))
                    if found and isinstance(position, int):
                        seq = int(found.group(1))
                        self.values.setdefault(seq, arrival)
                        in_this_message.add(seq)
                        if position in self._live_rows:     # its style came first: the table shows both now
                            self.styled.setdefault(seq, arrival)
                            self.style_first += 1
                        else:
                            self._pending.setdefault(position, []).append(seq)
                        summary.append(f"row {position}: value {seq}")
        for event in content.get("events", []):
            if event.get("kind") != "ModelChanged":
                continue
            if event.get("attr") == "cell_styles":
                data = dict(_entries(event.get("new"))).get("data")
                live_rows = {row for row, styles in _entries(data) if "live-change" in json.dumps(styles)}
                summary.append(f"cell_styles: live-change on rows {sorted(live_rows)}")
                self._live_rows = live_rows
                left_out = False
                for position in list(self._pending):
                    for seq in self._pending.pop(position):
                        if position in live_rows:
                            self.styled.setdefault(seq, arrival)
                            self.same_message += seq in in_this_message
                        else:
                            self.unstyled.add(seq)
                            left_out = True
                if left_out and len(self.examples) < 3:
                    self.examples.append([*self._recent, f"{arrival:.3f}: " + "; ".join(summary)])
            elif event.get("attr") == "text" and COLLEAGUE in str(event.get("new")):
                self.live_lines += 1
        if summary:
            self._recent.append(f"{arrival:.3f}: " + "; ".join(summary))


def _entries(value) -> list:
    """Key-value pairs of a Bokeh-serialised map (or a plain dict)."""
    if isinstance(value, dict) and value.get("type") == "map":
        return [tuple(e) for e in value.get("entries", [])]
    if isinstance(value, dict):
        return list(value.items())
    return []


def page_orders(dsn: str, pages: int) -> list[int]:
    """The orders of the grid's first `pages` pages in its default sort (newest first; ties by
    order number in the same direction, data/orders/reads.py)."""
    import psycopg
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            f"SELECT order_id FROM {SCHEMA}.orders ORDER BY created_at DESC, order_id DESC LIMIT %s", (PAGE * pages,))]


def write(dsn: str, orders: list[int], rate: float, writing, stop, commits: list) -> None:
    """Commit `rate` changes a second while `writing` is set, one order per commit, in turn."""
    import psycopg
    with psycopg.connect(dsn) as conn:
        seq, turn = 0, 0
        while not stop.is_set():
            if not writing.wait(0.05):
                continue
            due = time.perf_counter()
            while writing.is_set() and not stop.is_set():
                order_id = orders[turn % len(orders)]
                turn += 1
                note = NOTE.format(seq)
                began = time.perf_counter()
                conn.execute("SELECT set_config('app.user', %s, true)", (COLLEAGUE,))
                conn.execute(f"UPDATE {SCHEMA}.orders SET notes = %s WHERE order_id = %s", (note, order_id))
                conn.commit()
                commits.append((seq, order_id, began, time.perf_counter(), time.time()))
                seq += 1
                due += 1 / rate
                time.sleep(max(0.0, due - time.perf_counter()))    # behind: catch up, no pause


def listen(dsn: str, stop, heard: list) -> None:
    """When each NOTIFY naming orders reached a listener of our own (the database's part)."""
    import psycopg
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("LISTEN retail_changes")
        while not stop.is_set():
            for notice in conn.notifies(timeout=0.5):
                table, _, rest = notice.payload.partition(":")
                _, _, ids = rest.partition(":")
                if table == "orders":
                    heard.append((time.perf_counter(), tuple(int(i) for i in ids.split(",") if i.isdigit())))


async def observe(url: str, dsn: str, observers: int, pages: int, rate: float, writing, stop, ready, out) -> None:
    sessions: list[Observer] = []
    for i in range(observers):
        user = f"live-observer{i + 1}@example.com"
        session = await Observer.open(url, headers={"X-Forwarded-Email": user})
        await session.quiet(0.3, deadline=time.perf_counter() + 20)
        await User(session, random.Random(i), user, Results()).open_workspace("Orders")
        await session.quiet(0.5, deadline=time.perf_counter() + 20)
        if not session.showing("Rows 1\u2013"):
            raise RuntimeError(f"{user}: the Orders grid is not on its first page")
        sessions.append(session)
    orders = page_orders(dsn, pages)
    commits: list = []
    heard: list = []
    threads = [threading.Thread(target=write, args=(dsn, orders, rate, writing, stop, commits), daemon=True),
               threading.Thread(target=listen, args=(dsn, stop, heard), daemon=True)]
    for thread in threads:
        thread.start()
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.2)
    await asyncio.sleep(GRACE)
    for thread in threads:
        thread.join(5)
    out.put({"orders": orders, "commits": commits, "heard": heard,
             "observers": [{"values": s.values, "styled": s.styled, "unstyled": s.unstyled, "same": s.same_message,
                            "lines": s.live_lines, "messages": s.messages, "closed": s.closed, "style_first": s.style_first,
                            "examples": s.examples} for s in sessions],
             "cpu": sum(psutil.Process().cpu_times()[:2])})
    for session in sessions:
        await session.close()


def observer_process(url, dsn, observers, pages, rate, writing, stop, ready, out) -> None:
    try:
        asyncio.run(observe(url, dsn, observers, pages, rate, writing, stop, ready, out))
    except BaseException as exc:
        out.put({"error": f"{type(exc).__name__}: {exc}"})
        ready.set()
        raise


# -- the bench's own process: server, load and phases ---------------------------------------------

def database_cpu(data_dir: Path) -> float:
    """CPU of the embedded PostgreSQL: the postmaster, its live children, and its reaped ones."""
    try:
        postmaster = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
        t = postmaster.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        return total + cpu_seconds(postmaster.children(recursive=True))
    except (psutil.Error, OSError, ValueError):
        return float("nan")


@dataclass
class Phase:
    changes: bool
    seconds: float
    start: float = 0.0
    end: float = 0.0
    cpu: dict = field(default_factory=dict)       # what -> CPU seconds over the phase


def sample(app_pid: int, data_dir: Path, child_pid: int) -> dict:
    busy = psutil.cpu_times()        # guest time is counted in user time too
    machine = sum(busy) - busy.idle - sum(getattr(busy, f, 0.0) for f in ("iowait", "guest", "guest_nice"))
    try:
        writer = cpu_seconds([psutil.Process(child_pid)])
    except psutil.Error:
        writer = float("nan")
    return {"server": cpu_seconds(app_processes(app_pid)), "database": database_cpu(data_dir),
            "load generator": cpu_seconds([psutil.Process()]), "writer": writer, "machine": machine}


def building_index(data_dir: Path) -> bool:
    """Whether the database is building an index (the catalog's HNSW index is built in the
    background after start-up: about a core for 30-60 s, which would fall into the phases)."""
    try:
        postmaster = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))
        return any("CREATE INDEX" in " ".join(p.cmdline()) for p in postmaster.children())
    except (psutil.Error, OSError, ValueError):
        return False


def profile(pids: list[int], seconds: float, prefix: Path) -> list:
    """py-spy over each of the server's processes for `seconds` (collapsed stacks of the thread holding the
    GIL, 50 Hz: the Python part of its CPU)."""
    import subprocess
    return [subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
                              "--nonblocking", "--gil", "--format", "raw", "--output", f"{prefix}-{pid}.txt"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for pid in pids]


async def run_phases(results: Results, phases: list[Phase], writing, app_pid: int, data_dir: Path,
                     child_pid: int, profile_dir: Path | None = None) -> float:
    """The phases, from the steady state on (and once no index is being built); then people stop.
    Returns how long the phases waited for an index build."""
    while results.steady_from is None:
        await asyncio.sleep(0.1)
    waited = time.perf_counter()
    while building_index(data_dir) and time.perf_counter() - waited < 180:
        await asyncio.sleep(1)
    waited = time.perf_counter() - waited
    ends = time.perf_counter()
    for i, phase in enumerate(phases):
        (writing.set if phase.changes else writing.clear)()
        if profile_dir is not None:
            profile([p.pid for p in app_processes(app_pid)], phase.seconds - 1,
                    profile_dir / f"phase{i + 1}-{'with' if phase.changes else 'without'}")
        phase.start, before = time.perf_counter(), sample(app_pid, data_dir, child_pid)
        ends += phase.seconds
        await asyncio.sleep(max(0.0, ends - time.perf_counter()))
        phase.end, after = time.perf_counter(), sample(app_pid, data_dir, child_pid)
        phase.cpu = {k: after[k] - before[k] for k in before}
    writing.clear()
    results.until = time.perf_counter()
    return waited


async def load_with_phases(url: str, args, phases: list[Phase], writing, app_pid: int, data_dir: Path,
                           child_pid: int) -> tuple[Results, float]:
    results = Results()
    _, waited = await asyncio.gather(
        run_load(url, args.users, 3600, think=tuple(args.think), ramp=args.ramp, results=results,
                 after_warm_up=True),            # people stop when the phases are over
        run_phases(results, phases, writing, app_pid, data_dir, child_pid, args.profile))
    return results, waited


def ms(values: list[float], *points) -> str:
    if not values:
        return "none"
    p = percentiles(values, *(points or (50, 95)))
    return " ".join(f"p{k[1:]}={v:,.0f} ms" for k, v in p.items()) + f" max={max(values) * 1000:,.0f} ms"


def report(args, processes: int, phases: list[Phase], results: Results, seen: dict, server_log: str,
           waited: float) -> None:
    commits = seen["commits"]
    print(f"users={args.users} think={args.think[0]:g}-{args.think[1]:g} s ramp={args.ramp:g} s processes={processes} "
          f"observers={args.observers} writer: {args.rate:g} changes/s over the first {len(seen['orders'])} orders "
          f"(each order every {len(seen['orders']) / args.rate:.1f} s); phases {len(phases)} x {args.phase_seconds:g} s, "
          f"without, with, with, without the changes, …; the machine has {psutil.cpu_count()} cores")
    print(f"load: sessions held {results.held}/{args.users}, errors {len(results.errors)}; the phases waited "
          f"{waited:.0f} s after the warm-up for the background index build")

    # Commit -> screen.
    on_seconds = sum(p.seconds for p in phases if p.changes)
    durations = [c[3] - c[2] for c in commits]
    print(f"changes committed: {len(commits)} in {on_seconds:.0f} s with changes ({len(commits) / max(on_seconds, 1e-9):.1f}/s); "
          f"UPDATE+COMMIT {ms(durations)}")
    heard = seen["heard"]
    to_notify = []
    for seq, order_id, began, committed, _ in commits:
        at = next((t for t, ids in heard if t >= began and order_id in ids), None)
        if at is not None:
            to_notify.append(max(at - committed, 0.0))
    print(f"  commit -> NOTIFY at a listener of our own: {ms(to_notify)} (n={len(to_notify)})")
    watched = set(seen["orders"][:PAGE])          # the observers' page (with --pages, the writer goes further)
    all_commits, commits = commits, [c for c in commits if c[1] in watched]
    if len(commits) < len(all_commits):
        print(f"  {len(commits)} of the {len(all_commits)} changes were to orders on the observers' page")
    later_of = {}                     # seq -> the seqs of later commits to the same order
    by_order: dict[int, list[int]] = {}
    for seq, order_id, *_ in commits:
        by_order.setdefault(order_id, []).append(seq)
    for seqs in by_order.values():
        for i, seq in enumerate(seqs):
            later_of[seq] = seqs[i:]
    every_value, every_style, every_newest, gaps = [], [], [], []
    for i, o in enumerate(seen["observers"]):
        values, styled, newest = [], [], []
        missed = superseded = unstyled = 0
        for seq, order_id, began, committed, _ in commits:
            # The row shows this value or a newer one: what a person looking at it would call up to date.
            shown = [o["styled"][s] for s in later_of[seq] if s in o["styled"]]
            if shown:
                newest.append(min(shown) - committed)
            if seq in o["values"]:
                values.append(o["values"][seq] - committed)
                if seq in o["styled"]:
                    styled.append(o["styled"][seq] - committed)
                    gaps.append(o["styled"][seq] - o["values"][seq])
                else:
                    unstyled += 1
            elif any(s in o["values"] for s in later_of[seq][1:]):
                superseded += 1
            else:
                missed += 1
        every_value += values
        every_style += styled
        every_newest += newest
        print(f"  observer {i + 1}: commit -> highlighted cell {ms(styled)}; value shown {ms(values, 50)}; "
              f"of {len(commits)} values {superseded} never shown because a newer value of the row came first, "
              f"{missed} never shown at all, {unstyled} shown without the highlight; {o['lines']} 'changed by' lines; "
              f"{o['messages']} messages" + ("; SESSION CLOSED" if o["closed"] else ""))
    print(f"  all observers: commit -> highlighted cell {ms(every_style, 50, 95, 99)} (n={len(every_style)}); "
          f"commit -> value {ms(every_value, 50, 95, 99)}")
    print(f"  all observers: commit -> that value or a newer one highlighted in the row {ms(every_newest, 50, 95, 99)} "
          f"(n={len(every_newest)} of {len(commits) * len(seen['observers'])})")
    same = sum(o["same"] for o in seen["observers"])
    first = sum(o["style_first"] for o in seen["observers"])
    print(f"  value -> its highlight: {ms(gaps)}; in the same message {same} of {len(every_style)}, the style before "
          f"the value {first} (Panel sends the rows, the cell_styles and the line as separate messages; the "
          f"browser re-applies the table's current cell_styles after each data patch, so either order highlights)")

    example = next((e for o in seen["observers"] for e in o["examples"]), None)
    if example:
        print("  a value shown without its highlight, the observer's messages up to it (perf_counter s):")
        for line in example:
            print(f"    {line[:400]}")

    # What it costs.
    print("phases (steady state: everyone arrived and warm):")
    totals = {changes: {"s": 0.0, "n": 0, "server": 0.0, "database": 0.0, "others": 0.0, "lat": []}
              for changes in (False, True)}
    for phase in phases:
        latencies = [s.seconds for s in results.steps if s.outcome == "ok" and s.round > 0
                     and phase.start <= s.started < phase.end]
        failed = sum(1 for s in results.steps if s.outcome != "ok" and phase.start <= s.started < phase.end)
        seconds = phase.end - phase.start
        cpu = phase.cpu
        n = len(latencies)
        others = cpu["machine"] - cpu["server"] - cpu["database"] - cpu["load generator"] - cpu["writer"]
        print(f"  {'with' if phase.changes else 'without'} changes, {seconds:.0f} s: {n} interactions ({n / seconds:.1f}/s), "
              f"{ms(latencies)}, {failed} failed; server CPU {cpu['server']:.1f} s ({cpu['server'] / seconds:.0%} of one core, "
              f"{cpu['server'] / max(n, 1) * 1000:.0f} ms per interaction), database {cpu['database'] / seconds:.0%}, "
              f"load generator {cpu['load generator'] / seconds:.0%}, writer and observers {cpu['writer'] / seconds:.0%}; "
              f"machine busy {cpu['machine'] / seconds:.0%}, of which other programs {others / seconds:.0%}")
        t = totals[phase.changes]
        t["s"] += seconds
        t["n"] += n
        t["server"] += cpu["server"]
        t["database"] += cpu["database"]
        t["others"] += others
        t["lat"] += latencies
    for changes in (False, True):
        t = totals[changes]
        if not t["s"]:
            continue
        print(f"  all phases {'with' if changes else 'without'} changes ({t['s']:.0f} s): {t['n'] / t['s']:.1f} interactions/s, "
              f"{ms(t['lat'], 50, 95, 99)}; server CPU {t['server'] / t['s']:.0%} of one core, "
              f"{t['server'] / max(t['n'], 1) * 1000:.0f} ms per interaction; database {t['database'] / t['s']:.0%}; "
              f"other programs {t['others'] / t['s']:.0%}")
    off, on = totals[False], totals[True]
    if off["s"] and on["s"]:
        extra = on["server"] / on["s"] - off["server"] / off["s"]
        extra_db = on["database"] / on["s"] - off["database"] / off["s"]
        print(f"  the changes cost: server {extra:+.0%} of one core ({extra / args.rate * 1000:+.1f} ms of server CPU "
              f"per change), database {extra_db:+.0%} of one core")
        # On a saturated machine the server's CPU is what it can get in both, and the live path shows as
        # fewer interactions instead: count what the interactions would have cost at the rate without.
        per = off["server"] / max(off["n"], 1)
        live = on["server"] / on["s"] - on["n"] / on["s"] * per
        print(f"  the live path, as server CPU with the changes less their interactions at the cost without: "
              f"{live:.0%} of one core, {live / args.rate * 1000:.1f} ms per change")
    print(f"  the writer's and observers' process: {seen['cpu']:.0f} s of CPU")
    for error in sorted(set(results.errors))[:10]:
        print(f"  load error: {error} (x{results.errors.count(error)})")
    problems = [line for line in server_log.splitlines() if " ERROR " in line or "Traceback" in line
                or " WARNING " in line and "databricks.sdk" not in line]
    print(f"server log: {len(problems)} warnings or errors" + "".join(f"\n  {line[:300]}" for line in problems[:10]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20, help="changes committed per second while writing")
    parser.add_argument("--observers", type=int, default=3, help="sessions watching the grid's first page")
    parser.add_argument("--pages", type=int, default=1,
                        help="spread the changes over this many first pages (observers watch page 1)")
    parser.add_argument("--phases", type=int, default=4, help="without, with, with, without changes, and so on")
    parser.add_argument("--phase-seconds", type=float, default=40)
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0), help="pause between clicks (s)")
    parser.add_argument("--ramp", type=float, default=30, help="seconds over which people arrive")
    parser.add_argument("--processes", default="auto", help="APP_PROCESSES for the server (default: auto)")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="record each phase of each server process with py-spy (raw stacks) into DIR")
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if PAGE * args.pages / args.rate < 1:
        parser.error("each order would change more than once a second: lower --rate or raise --pages")
    # Without, with, with, without, …: a cost that drifts during the run (answers pile up in the chats)
    # weighs on both sides alike.
    phases = [Phase(changes=i % 4 in (1, 2), seconds=args.phase_seconds) for i in range(args.phases)]

    context = mp.get_context("spawn")
    writing, stop, ready, out = context.Event(), context.Event(), context.Event(), context.Queue()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, \
            served_with_workspace(Path(tmp), APP_PROCESSES=args.processes) as (app, ws):
        asyncio.run(run_load(app.url, 2, 5, think=(0.2, 0.5), ramp=0))          # warm the server up
        processes = app.get("/metrics").json().get("process", {}).get("processes", 1)
        child = context.Process(target=observer_process, daemon=True,
                                args=(app.url, ws.query_dsn, args.observers, args.pages, args.rate,
                                      writing, stop, ready, out))
        child.start()
        if not ready.wait(120):
            raise SystemExit("the observers did not open the Orders grid within 120 s")
        child.join(0.5)
        if child.exitcode is not None:
            raise SystemExit(f"the observers' process failed: {out.get(timeout=5).get('error')}")
        results, waited = asyncio.run(load_with_phases(app.url, args, phases, writing, app.process.pid,
                                                        Path(tmp) / "pgdata", child.pid))
        stop.set()
        try:
            seen = out.get(timeout=GRACE + 60)
        except queue.Empty:
            raise SystemExit("the observers' process did not report") from None
        child.join(10)
        server_log = app.logs()
    if "error" in seen:
        raise SystemExit(f"the observers' process failed: {seen['error']}")
    report(args, processes, phases, results, seen, server_log, waited)


if __name__ == "__main__":
    main()
