"""Load test: N simulated people against `python serve.py` (embedded PostgreSQL; Genie and Claude on
the fake workspace), each in a real session opened as a browser opens one (page GET, websocket,
document pull, document ready) and walking tests/users.py's script, with a person's pause between
clicks.

    python -m tests.bench.load --users 50 --seconds 120 [--think 1 5] [--processes 2] [--threads 4]

People arrive over `--ramp` seconds. Their first round builds every workspace for them (the
costliest part of a session); the steady state starts once everyone has finished it and lasts
`--seconds`. Both are reported: session opening and first visits, then, for the steady state,
interactions per second, p50/p95/p99 latency per kind and overall (to the update that shows the
result), the assistant's answers (question to Claude's summary), errors, the server's CPU (all its
processes) and RSS, and this load generator's CPU.

The default pause, 1-5 s, makes 50 people ask about 70 questions a minute among 630 interactions
(seed 001: "50 concurrent users, 100 queries/minute").
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from tests.bench.common import percentiles
from tests.helpers import ServedApp, isolated_env
from tests.users import Results, run_load


def app_processes(pid: int) -> list[psutil.Process]:
    """serve.py and its worker processes (not the embedded PostgreSQL)."""
    root = psutil.Process(pid)
    return [p for p in (root, *root.children(recursive=True)) if "postgres" not in p.name()]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            total += sum(p.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


class Sampler(threading.Thread):
    """RSS of the app's processes (before people arrive, once all have visited every workspace, and
    at its peak), and CPU used by them and by this process in the steady state."""

    def __init__(self, pid: int, results: Results):
        super().__init__(daemon=True)
        self.pid, self.results, self.running = pid, results, True
        self.peak_mb, self.steady_cpu = 0.0, None
        self.before_mb = self.rss()
        self.steady_mb = self.end_mb = None

    def rss(self) -> float:
        return sum(p.memory_info().rss for p in app_processes(self.pid)) / 2**20

    def cpu(self) -> tuple[float, float]:
        return cpu_seconds(app_processes(self.pid)), cpu_seconds([psutil.Process()])

    def run(self) -> None:
        while self.running:
            try:
                rss = self.rss()
                self.peak_mb = max(self.peak_mb, rss)
            except psutil.Error:
                pass
            if self.steady_cpu is None and self.results.steady_from is not None:
                self.steady_cpu, self.steady_mb = self.cpu(), rss
            time.sleep(0.25)


@contextmanager
def served_with_workspace(tmp: Path, **env):
    """serve.py on a prepared embedded database, with Genie and Claude on the fake workspace."""
    from data.embedded import EmbeddedPostgres
    from tests.fake_workspace import SPACE_ID, FakeWorkspace

    data_dir = tmp / "pgdata"
    with ServedApp(isolated_env(tmp, EMBEDDED_DATA_DIR=data_dir), tmp / "prepare.log") as app:
        app.wait_until_ready(timeout=300)      # a first run creates the database and the demo data
        app.stop()
    with FakeWorkspace(query_dsn=None) as ws:
        ws.stream_pause = 0.01
        env = isolated_env(tmp, EMBEDDED_DATA_DIR=data_dir, GENIE_SPACE_ID=SPACE_ID, GENIE_QUESTIONS_PER_MINUTE=600,
                           ORDER_EDITORS="*", **ws.env(), **env)
        with ServedApp(env, tmp / "serve.log") as app:
            app.wait_until_ready(timeout=120)
            server = EmbeddedPostgres(data_dir)
            server.port = server.running_port()             # the one serve.py started
            ws.query_dsn = server.admin_dsn("databricks_postgres")
            yield app, ws
            app.stop()


def line(kind: str, values: list[float]) -> str:
    p = percentiles(values, 50, 95, 99)
    return f"  {kind}: n={len(values)} p50={p['p50']:.0f} ms p95={p['p95']:.0f} ms p99={p['p99']:.0f} ms"


def report(args, results: Results, elapsed: float, cpu: tuple[float, float], sampler: Sampler, processes: int) -> None:
    peak_mb = sampler.peak_mb
    steady = results.latencies(steady=True)
    every = [x for values in steady.values() for x in values]
    answers = [s.seconds for s in results.steps
               if s.kind == "ask assistant" and s.outcome == "ok" and results.in_steady_state(s)]
    print(f"users={args.users} think={args.think[0]:g}-{args.think[1]:g} s ramp={args.ramp:g} s processes={processes} "
          f"panel_threads={args.threads or 'default'}: sessions held {results.held}/{args.users}; server RSS peak "
          f"{peak_mb:.0f} MB; errors {len(results.errors)}")
    if sampler.steady_mb is not None:
        print(f"memory per session that has visited every workspace: {(sampler.steady_mb - sampler.before_mb) / args.users:.1f} MB "
              f"(RSS {sampler.before_mb:.0f} MB before people arrived, {sampler.steady_mb:.0f} MB once all had); "
              f"at the end of the run {(sampler.end_mb - sampler.before_mb) / args.users:.1f} MB")
    print("arrival (sessions opening, first visits that build each workspace):")
    if results.opened:
        print(line("open a session", results.opened))
    for kind, values in sorted(results.latencies(steady=False).items()):
        print(line(kind, values))
    print(f"steady state ({elapsed:.0f} s, everyone arrived and warm): {len(every)} interactions, "
          f"{len(every) / elapsed:.1f}/s; {len(answers)} questions answered ({len(answers) / elapsed * 60:.0f}/min)")
    print(f"  CPU: server {cpu[0]:.0f} s ({cpu[0] / elapsed:.0%} of one core, "
          f"{cpu[0] / max(len(every), 1) * 1000:.0f} ms per interaction), this load generator {cpu[1]:.0f} s "
          f"({cpu[1] / elapsed:.0%}); the machine has {psutil.cpu_count()} cores")
    for kind, values in sorted(steady.items()):
        print(line(kind, values))
    if every:
        print(line("all interactions", every))
    if results.answers:
        print(line("assistant answer, question to summary (whole run)", results.answers))
    if results.edits:
        counts = {o: sum(1 for _, outcome in results.edits if outcome == o) for o in {o for _, o in results.edits}}
        print("  cell edits: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    failed = [s for s in results.steps if s.outcome in ("hang", "closed")]
    in_steady = sum(1 for s in failed if results.in_steady_state(s))
    print(f"  steps that showed nothing or lost their session: {len(failed) - in_steady} while people arrived, "
          f"{in_steady} in the steady state")
    for error in sorted(set(results.errors))[:10]:
        print(f"  error: {error} (x{results.errors.count(error)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=120, help="length of the steady state")
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0), help="pause between clicks (s)")
    parser.add_argument("--ramp", type=float, default=60, help="seconds over which people arrive")
    parser.add_argument("--processes", default="auto", help="APP_PROCESSES for the server (default: auto)")
    parser.add_argument("--threads", type=int, default=None, help="PANEL_NUM_THREADS for the server")
    args = parser.parse_args()
    env = {k: v for k, v in {"APP_PROCESSES": args.processes, "PANEL_NUM_THREADS": args.threads}.items()
           if v is not None}
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp, served_with_workspace(Path(tmp), **env) as (app, _):
        asyncio.run(run_load(app.url, 2, 5, think=(0.2, 0.5), ramp=0))          # warm the server up
        processes = app.get("/metrics").json().get("process", {}).get("processes", 1)
        results = Results()
        sampler = Sampler(app.process.pid, results)
        sampler.start()
        asyncio.run(run_load(app.url, args.users, args.seconds, think=tuple(args.think), ramp=args.ramp,
                             results=results, after_warm_up=True))
        ended = time.perf_counter()
        end_cpu, sampler.end_mb = sampler.cpu(), sampler.rss()
        sampler.running = False
    start_cpu = sampler.steady_cpu or end_cpu
    elapsed = ended - (results.steady_from or ended)
    report(args, results, max(elapsed, 1e-9), (end_cpu[0] - start_cpu[0], end_cpu[1] - start_cpu[1]),
           sampler, processes)


if __name__ == "__main__":
    main()
