"""The first view, side by side with a bare Material page (issue 19's measurement, before changing anything).

In one run, headless Chromium loads our page (`python serve.py`, embedded default, default processes)
and a bare page made of the same `panel_material_ui.Page` with three tabs of text and no data
(served by Panel in its own process), 12 times each with a warm browser cache (one context, the first
load not counted) and 12 times cold (a new context each time). Per load: time to the first byte,
to the first visible workspace text (our overview cards; the bare page's first tab), and to the
first chart drawn (ours only). Also: the server CPU per first view of ours (all its processes) and
the number of Bokeh models the browser holds for our first view.

    python -m tests.bench.first_view
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil
import requests

from data.net import free_port
from tests.bench.common import percentiles
from tests.conftest import CHROMIUM_ARGS, chromium_path
from tests.helpers import CHARTS_DRAWN_JS, ServedApp, isolated_env

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


def main() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-first-view-") as tmp:
        bare_port = free_port()
        script = Path(tmp) / "bare.py"
        script.write_text(BARE)
        bare = subprocess.Popen([sys.executable, str(script), str(bare_port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            with ServedApp(isolated_env(Path(tmp), EMBEDDED_DATA_DIR=str(Path(tmp) / "pgdata")),
                           Path(tmp) / "serve.log") as app, sync_playwright() as playwright:
                app.wait_until_ready(timeout=600)
                bare_url = f"http://127.0.0.1:{bare_port}/"
                for _ in range(100):
                    try:
                        if requests.get(bare_url, timeout=5).ok:
                            break
                    except requests.ConnectionError:
                        time.sleep(0.2)
                browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
                results = {}
                for warm in (True, False):
                    label = "warm" if warm else "cold"
                    before = cpu_seconds(app.process.pid)
                    results[f"ours {label}"] = series(browser, app.url, OUR_TEXT, chart=True, warm=warm)
                    cpu = (cpu_seconds(app.process.pid) - before) / (LOADS + warm) * 1000
                    results[f"bare {label}"] = series(browser, bare_url, BARE_TEXT, chart=False, warm=warm)
                    print(f"server CPU per first view of ours ({label} cache): {cpu:.0f} ms")
                browser.close()
                app.stop()
        finally:
            bare.terminate()
            bare.wait(10)
    for name, loads in results.items():
        print(f"{name:9}  " + " · ".join(summary(k, loads, key) for k, key in
                                         (("first byte", "ttfb"), ("first text", "text"), ("first chart", "chart"))))
    models = sorted({entry["models"] for entry in results["ours warm"] + results["ours cold"]})
    print(f"Bokeh models in the browser for our first view: {models[0]}–{models[-1]}")
    for label in ("warm", "cold"):
        ours = percentiles([e["text"] / 1000 for e in results[f"ours {label}"]])
        bare_p = percentiles([e["text"] / 1000 for e in results[f"bare {label}"]])
        print(f"first text, ours / bare ({label}): p50 {ours['p50'] / bare_p['p50']:.2f}×, "
              f"p95 {ours['p95'] / bare_p['p95']:.2f}× (target ≤ 1.3×)")


if __name__ == "__main__":
    main()
