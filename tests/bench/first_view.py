"""The first view, side by side with a bare Material page (issue 19's measurement, before changing anything).

In one run, headless Chromium loads our page (`python serve.py`, embedded default, default processes)
and a bare page made of the same `panel_material_ui.Page` with three tabs of text and no data
(served by Panel in its own process), 12 times each with a warm browser cache (one context, the first
load not counted) and 12 times cold (a new context each time). Per load: time to the first byte,
to the first visible workspace text (our overview cards; the bare page's first tab), and to the
first chart drawn (ours only). Also: the server CPU per first view of ours (all its processes) and
the number of Bokeh models the browser holds for our first view.

    python -m tests.bench.first_view                  # on an idle machine
    python -m tests.bench.first_view --under-load 50  # while 50 people work (tests/bench/load.py's script)
"""
from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

from data.net import free_port
from tests.bench.common import percentiles
from tests.bench.load import served_with_workspace
from tests.conftest import CHROMIUM_ARGS, chromium_path
from tests.helpers import CHARTS_DRAWN_JS, ServedApp, isolated_env
from tests.users import Results, run_load
from tests.wire import Session

LOADS = 12
OUR_TEXT = "Protect & Expand"
BARE_TEXT = "Bare page: the first tab's text"
BARE = textwrap.dedent('''
    import sys
    import panel as pn
    import panel_material_ui as pmui

    def page():
        tabs = pmui.Tabs(("Overview", pn.pane.Markdown("Bare page: the first tab's text")),
                         ("Second", pn.pane.Markdown("More text")), ("Third", pn.pane.Markdown("Even more")))
        return pmui.Page(title="Bare", main=[tabs])

    pn.serve({"/": page}, port=int(sys.argv[1]), address="127.0.0.1", show=False)
''')
UNDER_LOAD = 0
MODELS_JS = "() => { const d = Bokeh.documents[0]; return d._all_models ? d._all_models.size : -1 }"


def cpu_seconds(pid: int) -> float:
    parent = psutil.Process(pid)
    total = 0.0
    for process in [parent, *parent.children(recursive=True)]:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def load(context, url: str, text: str, chart: bool) -> dict:
    page = context.new_page()
    page.goto(url, wait_until="commit")
    page.get_by_text(text).first.wait_for(timeout=60_000)
    figures = {"text": page.evaluate("() => performance.now()")}
    if chart:
        page.wait_for_function(CHARTS_DRAWN_JS, arg=1, timeout=60_000, polling=50)
        figures["chart"] = page.evaluate("() => performance.now()")
        figures["models"] = page.evaluate(MODELS_JS)
    figures["ttfb"] = page.evaluate("() => performance.getEntriesByType('navigation')[0].responseStart")
    page.close()
    return figures


def series(browser, url: str, text: str, *, chart: bool, warm: bool) -> list[dict]:
    loads = []
    context = browser.new_context(viewport={"width": 1400, "height": 900}) if warm else None
    if warm:
        load(context, url, text, chart)                      # fills the browser's cache; not counted
    for _ in range(LOADS):
        fresh = context or browser.new_context(viewport={"width": 1400, "height": 900})
        loads.append(load(fresh, url, text, chart))
        if not warm:
            fresh.close()
    if context:
        context.close()
    return loads


def summary(name: str, loads: list[dict], key: str) -> str:
    values = [entry[key] / 1000 for entry in loads if key in entry]
    if not values:
        return f"{name}: —"
    p = percentiles(values)
    return f"{name} p50 {p['p50']:.0f} / p95 {p['p95']:.0f} ms"


def settled(app: ServedApp) -> None:
    """Wait until the app is ready and no longer busy starting: the embedded database's vector index
    is built in the background on a first run (half a minute of both cores), and each process reads
    its caches on its first sessions (8 sessions, each fully shown, warm them)."""
    app.wait_until_ready(timeout=600)
    deadline = time.monotonic() + 600
    while "vector index" not in app.logs() and time.monotonic() < deadline:
        time.sleep(1)

    async def open_sessions():
        for _ in range(8):
            session = await Session.open(app.url)
            await session.act([], done=lambda: len(session.find_all("Figure")) == 2, timeout=60)
            await session.close()
    asyncio.run(open_sessions())


def measure(app_url: str, bare_url: str, app_pid: int) -> dict[str, list[dict]]:
    from playwright.sync_api import sync_playwright

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        for warm in (True, False):
            label = "warm" if warm else "cold"
            before = cpu_seconds(app_pid)
            results[f"ours {label}"] = series(browser, app_url, OUR_TEXT, chart=True, warm=warm)
            cpu = (cpu_seconds(app_pid) - before) / (LOADS + warm) * 1000
            results[f"bare {label}"] = series(browser, bare_url, BARE_TEXT, chart=False, warm=warm)
            print(f"server CPU per first view of ours ({label} cache): {cpu:.0f} ms"
                  + (" (with the load's)" if UNDER_LOAD else ""))
        browser.close()
    return results


@contextmanager
def bare_page(tmp: Path):
    port = free_port()
    script = tmp / "bare.py"
    script.write_text(BARE)
    bare = subprocess.Popen([sys.executable, str(script), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                if requests.get(url, timeout=5).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        yield url
    finally:
        bare.terminate()
        bare.wait(10)


@contextmanager
def people_working(url: str, users: int):
    """`users` people walking tests/users.py's script (as tests/bench/load.py runs them, in a process
    of their own) until the block ends; it starts once each of them has made a first round."""
    people = subprocess.Popen([sys.executable, "-m", "tests.bench.first_view", "--people", url, str(users)],
                              stdout=subprocess.PIPE, text=True)
    for line in people.stdout:
        if line.startswith("steady"):
            break
    print(f"{users} people working; measuring")
    try:
        yield
    finally:
        people.send_signal(signal.SIGINT)
        print(people.stdout.read().strip())
        people.wait(120)


def walk_until_interrupted(url: str, users: int) -> None:
    """The people of `people_working`: report the steady state's start, walk until SIGINT, then
    report their interactions meanwhile."""
    results = Results()

    async def walk():
        load = asyncio.ensure_future(run_load(url, users, 3600, ramp=30, results=results, after_warm_up=True))
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        while results.steady_from is None:
            await asyncio.sleep(0.5)
        print("steady", flush=True)
        await stop.wait()
        results.until = 0
        await asyncio.wait_for(load, 60)
    asyncio.run(walk())
    steady = [v for values in results.latencies(steady=True).values() for v in values]
    p = percentiles(steady) if steady else {"p50": 0, "p95": 0}
    print(f"the {users} people's interactions meanwhile: n={len(steady)} p50 {p['p50']:.0f} / p95 {p['p95']:.0f} ms; "
          f"errors {len(results.errors)}", flush=True)


def main() -> None:
    global UNDER_LOAD
    parser = argparse.ArgumentParser()
    parser.add_argument("--under-load", type=int, default=0, metavar="N",
                        help="measure while N people work (tests/bench/load.py's script)")
    parser.add_argument("--people", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)   # the load's process
    arguments = parser.parse_args()
    if arguments.people:
        walk_until_interrupted(arguments.people[0], int(arguments.people[1]))
        return
    UNDER_LOAD = arguments.under_load
    with tempfile.TemporaryDirectory(prefix="bench-first-view-") as tmp, bare_page(Path(tmp)) as bare_url:
        if UNDER_LOAD:
            with served_with_workspace(Path(tmp)) as (app, _):
                settled(app)
                with people_working(app.url, UNDER_LOAD):
                    results = measure(app.url, bare_url, app.process.pid)
        else:
            with ServedApp(isolated_env(Path(tmp), EMBEDDED_DATA_DIR=str(Path(tmp) / "pgdata")),
                           Path(tmp) / "serve.log") as app:
                settled(app)
                results = measure(app.url, bare_url, app.process.pid)
                app.stop()
    report(results)


def report(results: dict[str, list[dict]]) -> None:
    for name, loads in results.items():
        print(f"{name:9}  " + " · ".join(summary(k, loads, key) for k, key in
                                         (("first byte", "ttfb"), ("first text", "text"), ("first chart", "chart"))))
    models = sorted({entry["models"] for entry in results["ours warm"] + results["ours cold"]})
    print(f"Bokeh models in the browser for our first view, when its first chart is drawn: {models[0]}–{models[-1]}")
    for label in ("warm", "cold"):
        ours = percentiles([e["text"] / 1000 for e in results[f"ours {label}"]])
        bare_p = percentiles([e["text"] / 1000 for e in results[f"bare {label}"]])
        print(f"first text, ours / bare ({label}): p50 {ours['p50'] / bare_p['p50']:.2f}×, "
              f"p95 {ours['p95'] / bare_p['p95']:.2f}× (target ≤ 1.3×)")


if __name__ == "__main__":
    main()
