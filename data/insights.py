"""Insights: what changed in the data, found in SQL before anyone asks.

Four rules look for what an analyst would want to hear about:

- `orders_pace`: orders and revenue today against the same time yesterday and a week ago (both
  comparisons must agree, so a quiet Sunday does not make Monday news);
- `city_conversion`: a city's conversion (completers / viewers) in the last 7 days against the 56
  days before;
- `device_completion`: a device's completion rate across all cities this week against the 8 weeks
  before;
- `amenity_lift`: an amenity whose confirmation lift changed sign since the previous run (the gold
  table is replaced on each sync, so the watcher keeps the last values it saw).

A finding is news only when the change is at least `min_change`, the periods compared hold at
least `min_size` observations (orders, viewers, listings), and the difference is unlikely to be
chance: `confidence` is the two-sided normal confidence of the difference (binomial for rates,
Poisson for counts and sums). Each finding has a key naming its rule, subject, direction and
period, and is stored once under that key.

One watcher runs for the whole app: every process tries on its own timer, and a transaction-level
advisory lock together with the time of the last recorded run lets exactly one of them run in each
interval, on any number of processes and instances. New insights are announced on the
`app_insights` channel, which every process LISTENs to.
"""
from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from sqlalchemy import Connection, text

from .cache import Caches, cached
from .changes import ChangeFeed
from .database import Database
from .tables import Tables

log = logging.getLogger(__name__)

CHANNEL = "app_insights"
_LOCK_KEY = 7_240_612            # advisory lock of the watcher's run (schema creation uses 7_240_611)
MIN_LIFT_POINTS = 1.0            # an amenity lift must be at least this far from zero, before and after


@dataclass(frozen=True)
class Thresholds:
    """When a change is news (INSIGHT_MIN_CHANGE_PCT, INSIGHT_MIN_CONFIDENCE_PCT, INSIGHT_MIN_SIZE)."""

    min_change: float = 0.20         # relative change, 0.20 = 20 %
    min_confidence: float = 0.999    # 1 - the chance of seeing a difference this large by luck
    min_size: int = 30               # orders, viewers or listings in the recent period

    @classmethod
    def from_settings(cls, settings) -> "Thresholds":
        return cls(settings.insight_min_change_pct / 100, settings.insight_min_confidence_pct / 100,
                   settings.insight_min_size)


@dataclass
class Finding:
    key: str                 # rule:subject:direction:period, stored once
    rule: str
    subject: str
    sentence: str            # what changed, with the figures and the comparison
    question: str            # what to ask the assistant about it
    current: float
    baseline: float
    change: float            # relative: -0.35 = 35 % lower
    confidence: float
    size: int


@dataclass
class Insight(Finding):
    insight_id: int = 0
    first_seen: datetime | None = None
    dismissed_by: str | None = None
    dismissed_at: datetime | None = None


@dataclass
class RunResult:
    findings: list[Finding]
    new: list[int]                              # ids of insights stored for the first time
    seconds: dict[str, float] = field(default_factory=dict)   # SQL time per rule


# -- statistics ---------------------------------------------------------------------------

def confidence(z: float) -> float:
    """Two-sided: how sure we are that a difference of `z` standard errors is not chance."""
    return math.erf(abs(z) / math.sqrt(2))


def rate_z(hits: float, trials: float, base_hits: float, base_trials: float) -> float:
    """Two-proportion z score (pooled), 0 when either side is empty."""
    if trials <= 0 or base_trials <= 0:
        return 0.0
    pooled = (hits + base_hits) / (trials + base_trials)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / base_trials))
    return 0.0 if spread == 0 else (hits / trials - base_hits / base_trials) / spread


def sum_z(total: float, squares: float, base_total: float, base_squares: float) -> float:
    """z score of the difference of two sums of random amounts (compound Poisson: variance = Σx²)."""
    spread = math.sqrt(squares + base_squares)
    return 0.0 if spread == 0 else (total - base_total) / spread


def change(current: float, baseline: float) -> float:
    """Relative change; infinite when something appears where there was nothing."""
    if baseline == 0:
        return 0.0 if current == 0 else math.copysign(math.inf, current)
    return (current - baseline) / baseline


def _signed(moved: float) -> str:
    """'+45%', '−30%', or 'from none' when there was nothing before."""
    if math.isinf(moved):
        return "from none"
    sign = "+" if moved > 0 else "\u2212"
    return f"{sign}{abs(moved) * 100:,.0f}%"


def _direction(value: float) -> str:
    return "up" if value > 0 else "down"


# -- rules ---------------------------------------------------------------------------------

def orders_pace(conn: Connection, t: Tables, limits: Thresholds, timezone: str) -> list[Finding]:
    row = conn.execute(text(f"""
        WITH at AS (SELECT now() AT TIME ZONE :tz AS local_now),
        periods AS (
            SELECT back, ((date_trunc('day', local_now) - make_interval(days => back)) AT TIME ZONE :tz) AS since,
                   ((local_now - make_interval(days => back)) AT TIME ZONE :tz) AS until
            FROM at, (VALUES (0), (1), (7)) AS p(back))
        SELECT p.back, (SELECT local_now::date FROM at) AS today, count(o.order_id) AS orders,
               coalesce(sum(o.total_amount), 0)::float8 AS revenue,
               coalesce(sum(o.total_amount * o.total_amount), 0)::float8 AS squares
        FROM periods p LEFT JOIN {t.orders} o ON o.created_at >= p.since AND o.created_at < p.until
        GROUP BY p.back ORDER BY p.back"""), {"tz": timezone}).mappings().all()
    now, yesterday, last_week = row
    day = now["today"].isoformat()
    findings = []
    measures = (("orders", "Orders", lambda r: r["orders"], lambda a, b: (a["orders"] - b["orders"]) /
                 math.sqrt(a["orders"] + b["orders"]) if a["orders"] + b["orders"] else 0.0, "{:,.0f}"),
                ("revenue", "Revenue", lambda r: r["revenue"], lambda a, b: sum_z(a["revenue"], a["squares"],
                                                                                  b["revenue"], b["squares"]),
                 "${:,.0f}"))
    for name, label, value, z_of, shown in measures:
        comparisons = [(value(now), value(base), change(value(now), value(base)), confidence(z_of(now, base)))
                       for base in (yesterday, last_week)]
        if max(now["orders"], yesterday["orders"], last_week["orders"]) < limits.min_size or not all(
                abs(c) >= limits.min_change and sure >= limits.min_confidence for _, _, c, sure in comparisons):
            continue
        (current, base_1, change_1, sure_1), (_, base_7, change_7, sure_7) = comparisons
        if (change_1 > 0) != (change_7 > 0):
            continue
        findings.append(Finding(
            key=f"orders_pace:{name}:{_direction(change_1)}:{day}", rule="orders_pace", subject=name,
            sentence=(f"{label} so far today: {shown.format(current)} against {shown.format(base_1)} at the same "
                      f"time yesterday ({_signed(change_1)}) and {shown.format(base_7)} a week ago "
                      f"({_signed(change_7)})."),
            question=f"Why is {name} today {'higher' if change_1 > 0 else 'lower'} than yesterday at this time? "
                     "Break today's orders down by status and by product against yesterday.",
            current=current, baseline=base_1, change=change_1, confidence=min(sure_1, sure_7),
            size=int(max(now["orders"], yesterday["orders"]))))
    return findings


def city_conversion(conn: Connection, t: Tables, limits: Thresholds, timezone: str) -> list[Finding]:
    rows = conn.execute(text(f"""
        WITH latest AS (SELECT max(event_date) AS day FROM {t.city_funnel})
        SELECT f.city, latest.day,
               sum(f.viewers) FILTER (WHERE f.event_date > latest.day - 7)::float8 AS viewers,
               sum(f.completers) FILTER (WHERE f.event_date > latest.day - 7)::float8 AS completers,
               sum(f.viewers) FILTER (WHERE f.event_date <= latest.day - 7)::float8 AS base_viewers,
               sum(f.completers) FILTER (WHERE f.event_date <= latest.day - 7)::float8 AS base_completers
        FROM {t.city_funnel} f, latest
        WHERE f.event_date > latest.day - 63
        GROUP BY f.city, latest.day"""))
    findings = []
    for r in rows.mappings():
        if (compared := _completion_change(r, limits)) is None:
            continue
        now, before, moved, sure = compared
        week = r["day"].isocalendar()
        findings.append(Finding(
            key=f"city_conversion:{r['city']}:{_direction(moved)}:{week.year}-W{week.week:02d}",
            rule="city_conversion", subject=r["city"],
            sentence=(f"Conversion in {r['city']} was {now * 100:.1f}% in the last 7 days against {before * 100:.1f}% "
                      f"over the 8 weeks before ({_signed(moved)}; {r['completers']:,.0f} of {r['viewers']:,.0f} "
                      "viewers completed)."),
            question=f"Why did conversion in {r['city']} {'rise' if moved > 0 else 'fall'} in the last 7 days? "
                     "Compare each funnel stage with the 8 weeks before.",
            current=now, baseline=before, change=moved, confidence=sure, size=int(r["viewers"])))
    return findings


def _completion_change(row, limits: Thresholds) -> tuple[float, float, float, float] | None:
    """(rate now, rate before, relative change, confidence) of completers per viewer in a row of
    viewers, completers, base_viewers and base_completers; None when it is not news."""
    if not row["viewers"] or not row["base_viewers"] or row["viewers"] < limits.min_size:
        return None
    now, before = row["completers"] / row["viewers"], row["base_completers"] / row["base_viewers"]
    moved = change(now, before)
    sure = confidence(rate_z(row["completers"], row["viewers"], row["base_completers"], row["base_viewers"]))
    if abs(moved) < limits.min_change or sure < limits.min_confidence:
        return None
    return now, before, moved, sure


def device_completion(conn: Connection, t: Tables, limits: Thresholds, timezone: str) -> list[Finding]:
    rows = conn.execute(text(f"""
        WITH latest AS (SELECT max(week_start) AS week FROM {t.device_funnel})
        SELECT d.device, latest.week,
               sum(d.viewers) FILTER (WHERE d.week_start = latest.week)::float8 AS viewers,
               sum(d.completers) FILTER (WHERE d.week_start = latest.week)::float8 AS completers,
               sum(d.viewers) FILTER (WHERE d.week_start < latest.week)::float8 AS base_viewers,
               sum(d.completers) FILTER (WHERE d.week_start < latest.week)::float8 AS base_completers
        FROM {t.device_funnel} d, latest
        WHERE d.week_start >= latest.week - 56
        GROUP BY d.device, latest.week"""))
    findings = []
    for r in rows.mappings():
        if (compared := _completion_change(r, limits)) is None:
            continue
        now, before, moved, sure = compared
        findings.append(Finding(
            key=f"device_completion:{r['device']}:{_direction(moved)}:{r['week'].isoformat()}",
            rule="device_completion", subject=r["device"],
            sentence=(f"{r['device'].capitalize()} completion this week (from {r['week']:%d %b}) is "
                      f"{now * 100:.1f}% against {before * 100:.1f}% over the 8 weeks before ({_signed(moved)}), "
                      f"across all cities ({r['viewers']:,.0f} viewers)."),
            question=f"Which cities drive the change in {r['device']} completion this week against the 8 weeks "
                     "before?",
            current=now, baseline=before, change=moved, confidence=sure, size=int(r["viewers"])))
    return findings


def amenity_lift(conn: Connection, t: Tables, limits: Thresholds, timezone: str) -> list[Finding]:
    """Lifts whose sign differs from the previous run's; then the current lifts become the baseline."""
    rows = conn.execute(text(f"""
        SELECT a.city, a.property_type, a.amenity_name, a.confirmation_lift::float8 AS lift,
               b.value AS before, a.listings_with, a.listings_without,
               a.rate_with::float8 AS rate_with, a.rate_without::float8 AS rate_without, current_date AS day
        FROM {t.amenity_lift} a
        JOIN {t.insight_baseline} b
          ON b.rule = 'amenity_lift' AND b.subject = a.city || ' / ' || a.property_type || ' / ' || a.amenity_name
        WHERE sign(a.confirmation_lift) <> sign(b.value)
          AND abs(a.confirmation_lift) >= :points AND abs(b.value) >= :points""",
                                 ), {"points": MIN_LIFT_POINTS}).mappings().all()
    conn.execute(text(f"""
        INSERT INTO {t.insight_baseline} (rule, subject, value)
        SELECT 'amenity_lift', city || ' / ' || property_type || ' / ' || amenity_name, confirmation_lift
        FROM {t.amenity_lift}
        ON CONFLICT (rule, subject) DO UPDATE SET value = EXCLUDED.value, seen_at = now()
        WHERE {t.insight_baseline}.value IS DISTINCT FROM EXCLUDED.value"""))
    findings = []
    for r in rows:
        listings = r["listings_with"] + r["listings_without"]
        if listings < limits.min_size:
            continue
        hits_with = r["rate_with"] / 100 * r["listings_with"]
        hits_without = r["rate_without"] / 100 * r["listings_without"]
        sure = confidence(rate_z(hits_with, r["listings_with"], hits_without, r["listings_without"]))
        if sure < limits.min_confidence:
            continue
        helps = r["lift"] > 0
        subject = f"{r['amenity_name']} for {r['property_type']} in {r['city']}"
        findings.append(Finding(
            key=f"amenity_lift:{r['city']} / {r['property_type']} / {r['amenity_name']}:"
                f"{_direction(r['lift'])}:{r['day'].isoformat()}",
            rule="amenity_lift", subject=subject,
            sentence=(f"{subject} now {'lifts' if helps else 'lowers'} confirmations by {abs(r['lift']):.1f} points "
                      f"(it {'lowered' if helps else 'lifted'} them by {abs(r['before']):.1f} before the latest sync; "
                      f"{listings:,} listings)."),
            question=f"How do confirmation rates compare for {r['property_type']} listings in {r['city']} with "
                     f"and without {r['amenity_name']}?",
            current=r["lift"], baseline=r["before"], change=change(r["lift"], r["before"]), confidence=sure,
            size=int(listings)))
    return findings


RULES: dict[str, Callable[[Connection, Tables, Thresholds, str], list[Finding]]] = {
    "orders_pace": orders_pace, "city_conversion": city_conversion, "device_completion": device_completion,
    "amenity_lift": amenity_lift}


# -- storing and reading ------------------------------------------------------------------

_COLUMNS = ("insight_key", "rule", "subject", "sentence", "question", "current_value", "baseline_value",
            "change", "confidence", "size")


class Insights:
    """The rules, where their findings are kept, and who dismissed them."""

    def __init__(self, db: Database, tables: Tables, *, thresholds: Thresholds = Thresholds(),
                 every: float = 300.0, timezone: str = "UTC", feed: ChangeFeed | None = None):
        self.db, self.t, self.thresholds, self.every, self.timezone = db, tables, thresholds, every, timezone
        self.feed = feed              # LISTENs to CHANNEL: new and dismissed insights, from any process
        self._caches = Caches()

    def run_if_due(self, *, force: bool = False) -> RunResult | None:
        """Run the rules if no process ran them within the interval (or `force`), and store what is
        new; None when another process is running them or ran them recently."""
        started = time.perf_counter()
        with self.db.transaction("insights_run") as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}).scalar():
                return None
            last = conn.execute(text(f"SELECT extract(epoch FROM now() - max(started_at)) FROM {self.t.insight_runs}"
                                     )).scalar()
            if not force and last is not None and float(last) < self.every * 0.9:
                return None
            result = self.check(conn)
            result.new = self._store(conn, result.findings)
            conn.execute(text(f"""
                INSERT INTO {self.t.insight_runs} (duration_ms, findings, new_insights, sql_ms, process)
                VALUES (:ms, :findings, :new, CAST(:sql_ms AS jsonb), :process)"""), {
                "ms": int((time.perf_counter() - started) * 1000), "findings": len(result.findings),
                "new": len(result.new), "process": f"{socket.gethostname()}:{os.getpid()}",
                "sql_ms": json.dumps({k: round(v * 1000, 1) for k, v in result.seconds.items()})})
            if result.new:
                conn.execute(text("SELECT pg_notify(:channel, :ids)"),
                             {"channel": CHANNEL, "ids": ",".join(map(str, result.new))})
        log.info("insights run findings=%d new=%d ms=%d", len(result.findings), len(result.new),
                 (time.perf_counter() - started) * 1000)
        return result

    def check(self, conn: Connection) -> RunResult:
        """Every rule's findings and each rule's SQL time, not stored (the amenity rule does move its
        baseline)."""
        findings, seconds = [], {}
        for name, rule in RULES.items():
            started = time.perf_counter()
            try:
                with conn.begin_nested():    # one failing rule (a synced table missing) spoils no other
                    findings += rule(conn, self.t, self.thresholds, self.timezone)
            except Exception as exc:
                log.warning("insight rule failed rule=%s error=%s", name, type(exc).__name__)
            seconds[name] = time.perf_counter() - started
        return RunResult(findings, [], seconds)

    def _store(self, conn: Connection, findings: list[Finding]) -> list[int]:
        new = []
        for f in findings:
            values = dict(zip(_COLUMNS, (f.key, f.rule, f.subject, f.sentence, f.question, f.current, f.baseline,
                                         f.change, f.confidence, f.size)))
            inserted = conn.execute(text(f"""
                INSERT INTO {self.t.insights} ({", ".join(_COLUMNS)})
                VALUES ({", ".join(":" + c for c in _COLUMNS)})
                ON CONFLICT (insight_key) DO UPDATE SET last_seen = now()
                RETURNING insight_id, (xmax = 0) AS inserted"""), values).one()
            if inserted.inserted:
                new.append(inserted.insight_id)
        return new

    def latest(self) -> list[Insight]:
        """The newest insights nobody dismissed, read once per process per announcement."""
        return self._latest(self.feed.version if self.feed else 0)

    @cached("insights_latest", 60)
    def _latest(self, _version: int) -> list[Insight]:
        return self.recent(limit=20)

    def recent(self, *, limit: int = 50, include_dismissed: bool = False) -> list[Insight]:
        """Newest first."""
        rows = self.db.rows("insights_recent", f"""
            SELECT insight_id, insight_key, rule, subject, sentence, question, current_value, baseline_value,
                   change, confidence, size, first_seen, dismissed_by, dismissed_at
            FROM {self.t.insights}
            WHERE :all OR dismissed_at IS NULL
            ORDER BY first_seen DESC, insight_id DESC LIMIT :limit""", {"all": include_dismissed, "limit": limit})
        return [_insight(r) for r in rows]

    def dismiss(self, insight_id: int, user: str) -> bool:
        """Record who dismissed it; False when it was already dismissed (by anyone) or does not exist."""
        with self.db.transaction("insight_dismiss") as conn:
            done = conn.execute(text(f"""
                UPDATE {self.t.insights} SET dismissed_by = :user, dismissed_at = now()
                WHERE insight_id = :id AND dismissed_at IS NULL"""), {"id": insight_id, "user": user}).rowcount == 1
            if done:
                conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        return done

    def last_run(self) -> dict | None:
        rows = self.db.rows("insights_last_run", f"""
            SELECT started_at, duration_ms, findings, new_insights, sql_ms FROM {self.t.insight_runs}
            ORDER BY started_at DESC LIMIT 1""")
        return rows[0] if rows else None


def _insight(row: dict) -> Insight:
    return Insight(key=row["insight_key"], rule=row["rule"], subject=row["subject"], sentence=row["sentence"],
                   question=row["question"], current=row["current_value"], baseline=row["baseline_value"],
                   change=row["change"], confidence=row["confidence"], size=row["size"],
                   insight_id=row["insight_id"], first_seen=row["first_seen"], dismissed_by=row["dismissed_by"],
                   dismissed_at=row["dismissed_at"])
