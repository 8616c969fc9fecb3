"""Test helpers: running `serve.py` as a real process, and small utilities."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from data.net import free_port

REPO = Path(__file__).resolve().parent.parent
APP_ROLE = "app_sp"
APP_ROLE_PASSWORD = "app-role-initial-password-7f3e"


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The current environment without Databricks/PG settings, with a private HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PG", "LAKEBASE_"))}
    # Two server processes unless a test says otherwise: the several-process path of the default
    # (auto, two per CPU) without paying for a worker per half-core in every served test.
    env.update(HOME=str(home), PYTHONUNBUFFERED="1", LOG_LEVEL="INFO", APP_PROCESSES="2")
    env.update({k: str(v) for k, v in extra.items()})
    return env


class ServedApp:
    """`python serve.py` in a subprocess; output goes to a log file the test can read."""

    def __init__(self, env: dict[str, str], log_path: Path, args: tuple[str, ...] = ()):
        self.port = int(env.get("DATABRICKS_APP_PORT") or free_port())
        env = {**env, "DATABRICKS_APP_PORT": str(self.port), "APP_ADDRESS": "127.0.0.1"}
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.started = time.monotonic()
        self.process = subprocess.Popen([sys.executable, str(REPO / "serve.py"), *args], cwd=REPO, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 10) -> requests.Response:
        return requests.get(self.url + path, timeout=timeout)

    def wait_until_ready(self, timeout: float = 120) -> float:
        """Seconds from process start until /health/ready answered 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve.py exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if self.get("/health/ready", timeout=5).status_code == 200:
                    return time.monotonic() - self.started
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"serve.py not ready after {timeout} s:\n{self.logs()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> float:
        """Send `sig` and return how long the process took to exit."""
        if self.process.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve.py did not stop within {timeout} s:\n{self.logs()}")
        finally:
            self._log.close()
        return time.monotonic() - started

    def logs(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def __enter__(self) -> "ServedApp":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if not self._log.closed:
            self._log.close()


def database_env(home: Path, pg, database: str, **env) -> dict[str, str]:
    """The environment of an app that uses `database` on the test server as the app role."""
    return isolated_env(home, PGHOST="127.0.0.1", PGPORT=pg.port, PGUSER=APP_ROLE, PGPASSWORD=APP_ROLE_PASSWORD,
                        PGDATABASE=database, PGSSLMODE="disable", **env)


@contextmanager
def serve_demo_copy(tmp: Path, pg, template: str, database: str, *, prepare=None, **env):
    """`serve.py` on a fresh copy of the demo database `template`, as the app role with a password,
    ready to take requests; stopped (SIGTERM) afterwards. `prepare(admin_dsn)` runs before it starts."""
    pg.create_database(database, template=template, owner=APP_ROLE)
    if prepare is not None:
        prepare(pg.admin_dsn(database))
    with ServedApp(database_env(tmp, pg, database, **env), tmp / "app.log") as app:
        app.wait_until_ready()
        yield app
        app.stop()


def shown_text(component) -> str:
    """What a person reads in one component: an alert's text and title, an HTML pane's text
    (tags dropped, entities decoded), a button's label, the questions a bar offers."""
    import html as html_module
    import re

    import panel as pn
    import panel_material_ui as pmui

    if isinstance(component, pmui.Alert):
        text = re.sub(r"\\(.)", r"\1", str(component.object or "")).replace("\u00a0", " ")
        return "\n".join(t for t in (component.title, text) if t)
    if isinstance(component, pn.pane.HTML):
        return html_module.unescape(re.sub(r"<[^>]+>", "", str(component.object or "")))
    found = []
    for name in ("label", "title", "meta", "sql", "empty"):
        value = getattr(component, name, None)
        if isinstance(value, str) and value:
            found.append(value)
    questions = getattr(component, "questions", None)
    if isinstance(questions, list):
        found.extend(questions)
    items = getattr(component, "items", None)        # an insight list's cards
    if isinstance(items, list):
        found.extend(f"{i.get('sentence', '')}\n{i.get('meta', '')}" for i in items if isinstance(i, dict))
    return "\n".join(found)


def page_text(viewables) -> str:
    """Everything a person can read in these components and their children."""
    import panel as pn
    return "\n".join(t for v in viewables for c in pn.panel(v).select() if (t := shown_text(c)))


@contextmanager
def plain_sql(pg, database: str):
    """`run(query, *args)`: plain SQL on a test database as its superuser, as someone outside the app
    would; the rows, or None for a statement that returns none."""
    import psycopg
    with psycopg.connect(pg.admin_dsn(database), autocommit=True) as conn:
        def run(query, *args):
            cursor = conn.execute(query, args)
            return cursor.fetchall() if cursor.description else None
        yield run


def run_async(make_coroutine, timeout: float = 600):
    """Run a coroutine to completion from a test. In a thread of its own: Playwright's sync API,
    once used in the test session, keeps an event loop running in this one."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result(timeout=timeout)


def session_document_text(url: str, arguments: dict | None = None) -> str:
    """Open a real session (HTTP page, then websocket) and return the whole document as JSON text:
    everything the browser would receive for the page."""
    import json

    import panel as pn
    import panel_material_ui  # noqa: F401 - registers the Material models for deserialising
    from bokeh.client import pull_session

    pn.extension("tabulator")

    def pull() -> str:
        # A thread of its own: Bokeh's client runs an event loop, which must not nest inside
        # one already running here (Playwright's sync API keeps one).
        import asyncio
        asyncio.set_event_loop(asyncio.new_event_loop())
        with pull_session(url=url, arguments=arguments) as session:
            return json.dumps(session.document.to_json(), default=str)

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(pull).result(timeout=60)


CHART_TITLES_JS = """() => {
  const titles = [];
  for (const doc of (window.Bokeh ? Bokeh.documents : []))
    for (const model of doc.all_models)
      // Bokeh 3.9 names the class; 3.10 (minified) only has the model's `type`.
      if ((model.type === "Title" || model.constructor.__name__ === "Title") && model.text) titles.push(model.text);
  return titles;
}"""


def chart_titles(page) -> list[str]:
    """Chart titles as the browser holds them (Bokeh draws them on a canvas, not as page text)."""
    return page.evaluate(CHART_TITLES_JS)


def wait_for_chart(page, pattern: str, timeout: float = 20_000) -> None:
    """Wait until a chart whose title matches the regular expression `pattern` is in the page."""
    page.wait_for_function(f"(pattern) => ({CHART_TITLES_JS})().some(t => new RegExp(pattern).test(t))",
                           arg=pattern, timeout=timeout)


# True once at least `minimum` Bokeh figures exist and every one has finished drawing.
CHARTS_DRAWN_JS = """(minimum) => {
  if (!window.Bokeh || !Bokeh.index) return false;
  const figures = [];
  const visit = (view) => {
    const kind = view.model ? view.model.type : "";
    if (["Figure", "figure", "Plot"].includes(kind) || ["FigureView", "PlotView"].includes(view.constructor.__name__))
      figures.push(view);
    for (const child of view.child_views || []) visit(child);
  };
  for (const view of Object.values(Bokeh.index)) visit(view);
  return figures.length >= minimum && figures.every(f => f.has_finished());
}"""


def eventually(check, seconds: float = 2.0) -> bool:
    """Whether `check()` holds within `seconds` (what another thread or process does takes a moment)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()
