"""System workspace: database, pool, token, latency, cache and errors, refreshed every few seconds."""
from __future__ import annotations

import pandas as pd
import panel as pn
import panel_material_ui as pmui
import param

from data.assistant.costs import AssistantCosts
from data.assistant.verified import VerifiedQuestions
from data.errors import classify
from data.health import Monitor
from data.processes import Processes

from . import format as fmt
from .markup import alert
from .widgets import Stat, cards, heading

REFRESH_MS = 3000


class SystemState(param.Parameterized):
    """The latest metrics snapshot; `refresh()` replaces it (a periodic callback calls it)."""

    snapshot = param.Dict(default={}, doc="What /metrics shows, as of the last refresh.")
    settings = param.Dict(default={}, doc="The app's settings with secrets redacted.")
    visible = param.Boolean(default=True, doc="Whether the workspace is on screen; hidden, it stops refreshing.")
    costs = param.Parameter(default=None, doc="What the assistant costs (Costs), or None when unknown.")
    costs_problem = param.String(default="", doc="Why the assistant's costs cannot be shown, when they cannot.")

    checks = param.List(default=[], doc="The latest checks of the verified questions (CheckRun), newest first.")
    everyone = param.List(default=[], doc="Every process of the app in every instance (ProcessFigures), this one first.")

    def __init__(self, monitor: Monitor, session_count=None, costs: AssistantCosts | None = None,
                 verified: VerifiedQuestions | None = None, processes: Processes | None = None, **params):
        super().__init__(**params)
        self._monitor = monitor
        self._processes = processes
        self.this_process = processes.name if processes is not None else None
        self._costs = costs
        self._verified = verified
        self._session_count = session_count or (lambda: None)
        self.settings = monitor.backend.settings.redacted()
        self.refresh()

    @param.depends("visible", watch=True)
    def refresh(self) -> None:
        if self.visible:
            if self._processes is not None:
                try:
                    self.everyone = self._processes.everyone()
                except Exception:  # the database is away: the Database card says so
                    self.everyone = []
            self.snapshot = self._monitor.snapshot(sessions=self._session_count())
            if self._costs is not None:
                try:
                    self.param.update(costs=self._costs.recent(), costs_problem="",
                                      checks=self._verified.recent_runs() if self._verified is not None else [])
                except Exception as exc:  # the database is away: the cards above say so
                    self.costs_problem = classify(exc).message


def _costs_frame(costs) -> pd.DataFrame:
    columns = ["day", "questions", "to_genie", "from_cache", "cache_share", "claude_tokens", "tokens_per_answer"]
    if costs is None or costs.days.empty:
        return pd.DataFrame(columns=columns)
    frame = costs.days[columns].copy()
    frame["day"] = frame["day"].astype(str)
    frame["cache_share"] = [fmt.percent(v) if pd.notna(v) else "—" for v in frame["cache_share"]]
    frame["tokens_per_answer"] = [f"{v:,.0f}" if pd.notna(v) else "—" for v in frame["tokens_per_answer"]]
    return frame


def _processes_frame(everyone: list, this_process: str | None) -> pd.DataFrame:
    columns = ["process", "sessions", "rss_mb", "pool", "cache", "up", "seen"]
    rows = [{"process": f"{p.process} (this session)" if p.process == this_process else p.process,
             "sessions": p.sessions, "rss_mb": round(p.rss_mb), "pool": f"{p.pool_in_use} / {p.pool_size}",
             "cache": fmt.percent(p.cache_hit_ratio) if p.cache_hit_ratio is not None else "—",
             "up": fmt.duration(p.uptime_s), "seen": f"{p.seen_s_ago:.0f} s ago"} for p in everyone]
    return pd.DataFrame(rows, columns=columns)


def _queries_frame(snapshot: dict) -> pd.DataFrame:
    rows = snapshot.get("queries", [])
    columns = ["query", "calls", "failures", "p50_ms", "p95_ms", "p99_ms"]
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def _errors_frame(snapshot: dict) -> pd.DataFrame:
    errors = snapshot.get("errors", {})
    return pd.DataFrame({"category": list(errors), "count": list(errors.values())})


def _settings_frame(settings: dict) -> pd.DataFrame:
    return pd.DataFrame({"setting": list(settings), "value": [str(v) for v in settings.values()]})


class SystemView(pn.viewable.Viewer):
    """Renders `SystemState` and keeps it fresh while the session lives."""

    def __init__(self, state: SystemState, **params):
        super().__init__(**params)
        self.state = state
        self.database, self.pool, self.token = Stat("Database"), Stat("Connection pool"), Stat("Token")
        self.cache, self.errors = Stat("Cache hit ratio"), Stat("Errors")
        self.replica = Stat("Read replica")
        self.genie, self.answer_cache, self.tokens = (Stat("Genie, last minute"), Stat("Answers from the cache today"),
                                                      Stat("Claude tokens per answer today"))
        self.verified = Stat("Verified answers still matching")
        table = dict(show_index=False, disabled=True, sizing_mode="stretch_width", layout="fit_columns")
        self.queries = pn.widgets.Tabulator(_queries_frame({}), max_height=360, **table, titles={
            "query": "Query", "calls": "Calls", "failures": "Failed", "p50_ms": "p50 (ms)",
            "p95_ms": "p95 (ms)", "p99_ms": "p99 (ms)"}, name="query-latency")
        self.error_table = pn.widgets.Tabulator(_errors_frame({}), **table,
                                                titles={"category": "Category", "count": "Count"})
        self.costs_table = pn.widgets.Tabulator(_costs_frame(None), **table, titles={
            "day": "Day", "questions": "Questions", "to_genie": "Sent to Genie", "from_cache": "From the cache",
            "cache_share": "Cache share", "claude_tokens": "Claude tokens", "tokens_per_answer": "Tokens per answer"})
        self.settings_table = pn.widgets.Tabulator(_settings_frame(state.settings), **table,
                                                   titles={"setting": "Setting", "value": "Value"})
        self.app_total = Stat("Whole app")
        self.process_table = pn.widgets.Tabulator(_processes_frame([], None), **table, titles={
            "process": "Process (host:pid)", "sessions": "Sessions", "rss_mb": "RSS (MB)", "pool": "Pool in use",
            "cache": "Cache hit ratio", "up": "Up for", "seen": "Last heard"})
        state.param.watch(self._render, "snapshot")
        self._render()
        # Bokeh's own periodic callback, not Panel's: Panel marks the page busy around each run, and
        # re-sending the Material page's busy flag walks the whole document (costly x every session).
        # The view may be built in a worker thread (a tab switch under PANEL_NUM_THREADS), where the
        # periodic callback cannot start: register it from the server's event loop on its next tick.
        document = pn.state.curdoc
        if document is not None and document.session_context is not None:
            document.add_next_tick_callback(lambda: document.add_periodic_callback(state.refresh, REFRESH_MS))

    def _render(self, *_) -> None:
        s = self.state.snapshot
        db, pool, token, cache = s["database"], s["pool"], s["token"], s["cache"]
        with pn.io.hold():
            up = db["state"] == "up"
            self.database.update(
                "Up" if up else "Down", tone="good" if up else "bad",
                detail=(f"PostgreSQL {db['version'] or '?'} · {db['mode_label']}" if up
                        else f"{db['probe'].get('reason')} ({db['probe'].get('category')})"))
            self.pool.update(
                f"{pool['checked_out']} / {pool['size']}",
                detail=f"in use / pool size · overflow {pool['overflow']} of {pool['max_overflow']} · "
                       f"{pool['connections_opened']} opened")
            self.token.update(**_token_display(token))
            self.replica.update(**_replica_display(s.get("replica")))
            self.cache.update(fmt.percent(cache["hit_ratio"]),
                              detail=f"{cache['hits']:,} hits · {cache['misses']:,} misses")
            total, process = sum(s["errors"].values()), s["process"]
            sessions = fmt.plural(process["sessions"] or 0, "session")
            self.errors.update(f"{total:,}", tone="bad" if total else "default",
                               detail=f"up {fmt.duration(process['uptime_s'])} · RSS {process['rss_mb']:.0f} MB · {sessions}")
            _replace_if_changed(self.queries, _queries_frame(s))
            self._render_processes()
            _replace_if_changed(self.error_table, _errors_frame(s))
            self._render_costs(self.state.costs)

    def _render_processes(self) -> None:
        everyone = self.state.everyone
        if not everyone:
            self.app_total.update("—", detail="no process has reported yet")
        else:
            instances = len({p.process.rsplit(":", 1)[0] for p in everyone})
            self.app_total.update(
                fmt.plural(sum(p.sessions for p in everyone), "session"),
                detail=f"{fmt.plural(len(everyone), 'process', 'processes')} on {fmt.plural(instances, 'host')} · "
                       f"RSS {sum(p.rss_mb for p in everyone):,.0f} MB · this session on {self.state.this_process}")
        _replace_if_changed(self.process_table, _processes_frame(everyone, self.state.this_process))

    def _render_costs(self, costs) -> None:
        if costs is None:
            return
        today = costs.today
        busy = costs.genie_last_minute >= costs.budget_per_minute
        self.genie.update(f"{costs.genie_last_minute} of {costs.budget_per_minute}", tone="bad" if busy else "default",
                          detail="questions sent in the last minute, of the app's budget per minute")
        if today is None:
            self.answer_cache.update("—", detail="no questions today")
            self.tokens.update("—", detail="no questions today")
        else:
            share = fmt.percent(today["cache_share"]) if pd.notna(today["cache_share"]) else "—"
            self.answer_cache.update(share, detail=f"{int(today['from_cache']):,} of {int(today['questions']):,} "
                                                   "questions")
            per = f"{today['tokens_per_answer']:,.0f}" if pd.notna(today["tokens_per_answer"]) else "—"
            self.tokens.update(per, detail=f"{int(today['claude_tokens']):,} tokens today")
        _replace_if_changed(self.costs_table, _costs_frame(costs))
        checks = [run for run in self.state.checks if run.total]
        if checks:
            trend = " → ".join(fmt.percent(run.score, 0) for run in reversed(checks[:6]))
            self.verified.update(fmt.percent(checks[0].score, 0), tone="good" if checks[0].score == 1 else "default",
                                 detail=f"{checks[0].matched} of {checks[0].total} at the latest check · trend {trend}")
        else:
            self.verified.update("–", detail="no check yet (Assistant → Verified → Check now)")

    def _costs_section(self) -> list:
        if self.state.costs is None and not self.state.costs_problem:
            return []
        return [heading("What the assistant costs"), alert(self.state.param.costs_problem),
                cards(self.genie, self.answer_cache, self.tokens, self.verified), self.costs_table]

    def __panel__(self):
        return pn.Column(
            heading("This process" + (f" ({self.state.this_process})" if self.state.this_process else "")),
            cards(self.database, self.pool, self.token, self.replica, self.cache, self.errors),
            heading("Every process of the app"), cards(self.app_total), self.process_table,
            pn.Row(
                pn.Column(heading("Query latency by query name"), self.queries, sizing_mode="stretch_width"),
                pn.Column(heading("Errors by category"), self.error_table, width=300, margin=(0, 0, 0, 16)),
                sizing_mode="stretch_width"),
            *self._costs_section(),
            pmui.Card(self.settings_table, title="Settings (secrets redacted)", collapsed=True,
                      sizing_mode="stretch_width", margin=(16, 0)),
            sizing_mode="stretch_width", margin=(8, 16),
        )


def _replace_if_changed(table: pn.widgets.Tabulator, frame: pd.DataFrame) -> None:
    """Re-sending an unchanged table costs every open session bandwidth and CPU."""
    if not frame.equals(table.value):
        table.value = frame


def _replica_display(replica: dict | None) -> dict:
    if not replica or not replica["configured"]:
        return {"value": "None", "detail": "every read goes to the primary (set PGHOST_READONLY to add one)"}
    lag = f"{replica['lag_s']:.1f} s behind" if replica["lag_s"] is not None else "lag unknown"
    if replica["in_use"]:
        return {"value": "In use", "tone": "good",
                "detail": f"{lag} · marketplace, catalog and assistant reads go there"}
    return {"value": "Not in use", "tone": "bad", "detail": f"{replica['reason']}; reads go to the primary"}


def _token_display(token: dict) -> dict:
    if token["mode"] != "lakebase":
        value = {"embedded": "Not needed", "password": "Static password"}[token["mode"]]
        return {"value": value, "detail": token["kind"]}
    if "age_s" not in token:
        return {"value": "Not minted yet", "detail": token["kind"]}
    expiring = token["expires_in_s"] < 300
    return {"value": f"expires in {fmt.duration(token['expires_in_s'])}",
            "detail": f"age {fmt.duration(token['age_s'])} · refresh in {fmt.duration(token['refresh_in_s'])} · "
                      f"{token['mints']} minted · {token['kind']}",
            "tone": "bad" if expiring else "good"}
