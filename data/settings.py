"""Settings: every environment variable the app reads, validated together at start-up.

`VARIABLES` is the single list of names, defaults and meanings; the README's configuration
table and the Asset Bundle tests are checked against it. `load_settings()` returns a frozen
`Settings` or raises `SettingsError` naming every missing or conflicting variable at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent

EMBEDDED, PASSWORD, LAKEBASE = "embedded", "password", "lakebase"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class Var:
    name: str
    default: str | None
    doc: str
    secret: bool = False


VARIABLES: tuple[Var, ...] = (
    # Serving
    Var("DATABRICKS_APP_PORT", "8000", "Port the app listens on (Databricks Apps sets it)."),
    Var("APP_ADDRESS", "0.0.0.0", "Address the app binds to."),
    Var("ALLOW_WEBSOCKET_ORIGIN", None,
        "Comma-separated hosts allowed to open the app's websocket (the app's public host on Databricks); "
        "default: localhost and 127.0.0.1 on the app port."),
    Var("APP_PROCESSES", "auto", "Server processes behind the one port, each with its own sessions (a Python "
                                 "process runs on one core at a time); auto: two per CPU the app may use, at most 8."),
    Var("PANEL_NUM_THREADS", "4", "Worker threads for session callbacks in each process (0 = Panel's default pool "
                                  "size)."),
    Var("LOG_LEVEL", "INFO", "Log level for the app's one-line-per-event log on stdout."),
    # Database: as Databricks Apps injects them for a database resource
    Var("PGHOST", None, "PostgreSQL host. Unset (with no Lakebase variable) means the embedded PostgreSQL."),
    Var("PGPORT", "5432", "PostgreSQL port."),
    Var("PGDATABASE", "databricks_postgres", "Database name."),
    Var("PGUSER", None, "Role to connect as; on Lakebase the app's service principal client ID."),
    Var("PGSSLMODE", None, "libpq sslmode; default 'require' on Lakebase, 'prefer' otherwise."),
    Var("PGAPPNAME", "lakebase-panel", "application_name reported to PostgreSQL."),
    Var("PGPASSWORD", None, "Static password: selects the password mode.", secret=True),
    Var("LAKEBASE_INSTANCE_NAME", None, "Lakebase Provisioned instance: tokens from w.database."),
    Var("PGENDPOINT", None,
        "Lakebase Autoscaling endpoint (projects/<p>/branches/<b>/endpoints/<e>): tokens from w.postgres."),
    # Databricks credentials (read by the Databricks SDK; validated here)
    Var("DATABRICKS_HOST", None, "Workspace URL."),
    Var("DATABRICKS_TOKEN", None, "Personal access token (local development).", secret=True),
    Var("DATABRICKS_CLIENT_ID", None, "Service principal client ID (injected by Databricks Apps)."),
    Var("DATABRICKS_CLIENT_SECRET", None, "Service principal secret (injected by Databricks Apps).", secret=True),
    Var("DATABRICKS_CONFIG_PROFILE", None, "Profile in ~/.databrickscfg to use instead of the variables above."),
    # Assistant (Genie and Claude are optional: without them the Assistant explains what to set)
    Var("GENIE_SPACE_ID", None, "Genie space over this app's tables that answers questions in plain language."),
    Var("SERVING_ENDPOINT", "databricks-claude-sonnet-4-5",
        "Serving endpoint of the Claude model that summarises answers, suggests follow-ups and explains failures."),
    Var("DASHBOARD_ID", None, "Published AI/BI dashboard to show in the Assistant workspace."),
    Var("ASSISTANT_TIMEOUT", "30", "Seconds a question may take before the assistant gives up."),
    Var("GENIE_QUESTIONS_PER_MINUTE", "5", "Questions sent to Genie per minute from this process (Genie's limit)."),
    Var("ASSISTANT_AS_USER", "false", "With Databricks Apps user authorization on, ask Genie and Claude as the "
                                      "signed-in user (their X-Forwarded-Access-Token) instead of the app."),
    Var("DATABRICKS_WAREHOUSE_ID", None, "SQL warehouse of the Genie space (python -m data.setup genie-space uses it)."),
    Var("ASSISTANT_READER_ROLE", "assistant_reader",
        "Database role (NOLOGIN) every assistant query runs as: it may only SELECT the marketplace, orders and "
        "fashion tables (python -m data.setup schema creates it)."),
    # Tables
    Var("MARKETPLACE_SCHEMA", "marketplace", "Schema holding the synced marketplace gold tables."),
    Var("RETAIL_SCHEMA", "retail360", "Schema of the app-owned Retail360 orders tables."),
    Var("FASHION_SCHEMA", "fashion_demo", "Schema holding the synced fashion catalog tables."),
    Var("FASHION_PRODUCTS_TABLE", "productsdb", "Synced table of fashion products."),
    Var("FASHION_USERS_TABLE", "usersdb", "Synced table of catalog users."),
    Var("FASHION_EMBEDDINGS_TABLE", "product_image_embeddingsdb", "Synced table of product image embeddings."),
    Var("FASHION_STYLE_TABLE", "user_style_featuresdb", "Synced table of user style features."),
    Var("APP_SCHEMA", "app", "Schema of the app's own bookkeeping tables (metadata, assistant log, feedback)."),
    # Pool
    Var("DB_POOL_SIZE", "5", "Connections kept in the pool."),
    Var("DB_MAX_OVERFLOW", "15", "Extra connections opened under load."),
    Var("DB_POOL_TIMEOUT", "10", "Seconds to wait for a free connection."),
    Var("DB_POOL_RECYCLE", "2700", "Seconds after which a connection is replaced (before the token's hour is up)."),
    Var("DB_CONNECT_TIMEOUT", "5", "Seconds to wait when opening a connection."),
    Var("DB_STATEMENT_TIMEOUT_MS", "30000", "Server-side limit for one statement, in milliseconds."),
    # Orders
    Var("ORDER_EDITORS", None,
        "Who may change orders: comma-separated e-mails, or * for everyone; default: everyone on the embedded "
        "database, nobody elsewhere (everyone else only reads)."),
    Var("APP_TIMEZONE", "UTC", "Time zone that decides what 'today' means for order analytics (IANA name)."),
    # Embedded default
    Var("EMBEDDED_DATA_DIR", str(REPO_ROOT / ".pgdata"), "Data directory of the embedded PostgreSQL."),
    Var("DEMO_SCALE", "1", "Size factor for generated demo data (orders: 5,000 × scale)."),
)

_BY_NAME = {v.name: v for v in VARIABLES}
SECRET_NAMES = frozenset(v.name for v in VARIABLES if v.secret)


class SettingsError(Exception):
    """The environment cannot start the app; `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Configuration problems:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    mode: str
    app_port: int
    app_address: str
    websocket_origins: tuple[str, ...]
    num_threads: int
    processes: int
    log_level: str
    pg_host: str | None
    pg_port: int
    pg_database: str
    pg_user: str | None
    pg_sslmode: str
    pg_appname: str
    pg_password: str | None
    lakebase_instance: str | None
    lakebase_endpoint: str | None
    databricks_host: str | None
    marketplace_schema: str
    retail_schema: str
    fashion_schema: str
    fashion_tables: dict[str, str]          # the app's name for each fashion table -> its name in the database
    app_schema: str
    pool_size: int
    max_overflow: int
    pool_timeout: float
    pool_recycle: int
    connect_timeout: int
    statement_timeout_ms: int
    embedded_data_dir: Path
    demo_scale: float
    order_editors: tuple[str, ...]
    timezone: str
    genie_space_id: str | None
    serving_endpoint: str
    dashboard_id: str | None
    assistant_timeout: float
    genie_per_minute: int
    assistant_as_user: bool
    warehouse_id: str | None
    assistant_reader_role: str
    databricks_available: bool

    @property
    def mode_label(self) -> str:
        if self.mode == LAKEBASE:
            return "Lakebase Autoscaling" if self.lakebase_endpoint else "Lakebase Provisioned"
        return {EMBEDDED: "Embedded PostgreSQL", PASSWORD: "PostgreSQL (password)"}[self.mode]

    def redacted(self) -> dict[str, object]:
        """The settings as shown to people: secrets replaced by whether they are set."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "pg_password":
                value = "(set)" if value else "(not set)"
            shown[f.name] = str(value) if isinstance(value, Path) else value
        return shown


def _get(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return _BY_NAME[name].default
    return raw.strip()


class _Reader:
    """Collects conversion problems instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str) -> str | None:
        return _get(self.env, name)

    def integer(self, name: str, low: int, high: int) -> int:
        raw = _get(self.env, name)
        try:
            value = int(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.problems.append(f"{name}={raw!r} is not a whole number")
            return int(_BY_NAME[name].default or 0)
        if not low <= value <= high:
            self.problems.append(f"{name}={value} is outside {low}..{high}")
        return value

    def boolean(self, name: str) -> bool:
        raw = (_get(self.env, name) or "").lower()
        if raw not in ("true", "false", "1", "0", "yes", "no"):
            self.problems.append(f"{name}={raw!r} is not true or false")
            return False
        return raw in ("true", "1", "yes")

    def number(self, name: str, low: float, high: float) -> float:
        raw = _get(self.env, name)
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            self.problems.append(f"{name}={raw!r} is not a number")
            return float(_BY_NAME[name].default or 0)
        if not low <= value <= high:
            self.problems.append(f"{name}={value:g} is outside {low:g}..{high:g}")
        return value

    def identifier(self, name: str) -> str:
        value = _get(self.env, name) or ""
        if not value or len(value) > 63 or "\x00" in value:
            self.problems.append(f"{name}={value!r} is not a valid PostgreSQL name (1-63 characters)")
        return value


def _database_mode(env: Mapping[str, str], force_embedded: bool) -> tuple[str, list[str]]:
    """Which credential provider the variables select, and every missing or conflicting one."""
    has = {name: bool((env.get(name) or "").strip()) for name in _BY_NAME}
    if force_embedded:
        return EMBEDDED, []
    sources = [n for n in ("PGPASSWORD", "LAKEBASE_INSTANCE_NAME", "PGENDPOINT") if has[n]]
    problems: list[str] = []
    if not sources:
        if has["PGHOST"]:
            problems.append("PGHOST is set but there are no credentials for it: set PGPASSWORD, "
                            "LAKEBASE_INSTANCE_NAME (Provisioned) or PGENDPOINT (Autoscaling), "
                            "or unset PGHOST to use the embedded PostgreSQL")
        return EMBEDDED, problems
    if len(sources) > 1:
        problems.append(f"{', '.join(sources[:-1])} and {sources[-1]} are all set: "
                        "choose one way to authenticate to the database")
    if sources == ["PGPASSWORD"]:
        problems += [f"{name} is required with PGPASSWORD" for name in ("PGHOST", "PGUSER") if not has[name]]
        return PASSWORD, problems
    # Lakebase: PGHOST and PGUSER may be looked up through the SDK; Databricks credentials must exist.
    lakebase = next(n for n in sources if n != "PGPASSWORD")
    if not (has["DATABRICKS_HOST"] or has["DATABRICKS_CONFIG_PROFILE"]):
        problems.append(f"DATABRICKS_HOST (or DATABRICKS_CONFIG_PROFILE) is required with {lakebase}")
    if has["DATABRICKS_CLIENT_ID"] != has["DATABRICKS_CLIENT_SECRET"]:
        missing = "DATABRICKS_CLIENT_SECRET" if has["DATABRICKS_CLIENT_ID"] else "DATABRICKS_CLIENT_ID"
        problems.append(f"{missing} is required when the other half of the service principal credential is set")
    elif not (has["DATABRICKS_TOKEN"] or has["DATABRICKS_CLIENT_ID"] or has["DATABRICKS_CONFIG_PROFILE"]):
        problems.append(f"Databricks credentials are required with {lakebase}: set DATABRICKS_TOKEN, "
                        "DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, or DATABRICKS_CONFIG_PROFILE")
    return LAKEBASE, problems


def _editors(raw: str | None, mode: str) -> tuple[str, ...]:
    if raw is None:
        return ("*",) if mode == EMBEDDED else ()
    return tuple(sorted({e.strip().lower() for e in raw.split(",") if e.strip()}))


def _timezone(name: str, problems: list[str]) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"APP_TIMEZONE={name!r} is not a time zone name (for example Europe/Paris or UTC)")
    return name


# Two processes per CPU: the OS then shares the cores between them, so a quick click is not queued
# behind a slow assistant answer in the same process. On 2 cores at 80 people, p95 652 ms with four
# processes against 2.2 s with two (tests/bench/load.py; README, Performance).
PROCESSES_PER_CPU = 2
MAX_AUTO_PROCESSES = 8


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a container's CPU quota (cgroup v2)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def _processes(r: "_Reader") -> int:
    raw = (r.text("APP_PROCESSES") or "auto").strip().lower()
    if raw == "auto":
        return min(available_cpus() * PROCESSES_PER_CPU, MAX_AUTO_PROCESSES)
    if not raw.isdigit() or not 1 <= int(raw) <= 16:
        r.problems.append(f"APP_PROCESSES={raw!r} is not auto or a whole number from 1 to 16")
        return 1
    return int(raw)


def load_settings(env: Mapping[str, str] | None = None, *, force_embedded: bool = False) -> Settings:
    env = os.environ if env is None else env
    mode, problems = _database_mode(env, force_embedded)
    r = _Reader(env)
    port = r.integer("DATABRICKS_APP_PORT", 1, 65535)
    sslmode = r.text("PGSSLMODE") or ("require" if mode == LAKEBASE else "prefer")
    if sslmode not in SSL_MODES:
        problems.append(f"PGSSLMODE={sslmode!r} is not one of {', '.join(SSL_MODES)}")
    log_level = (r.text("LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"LOG_LEVEL={log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    origins = r.text("ALLOW_WEBSOCKET_ORIGIN")
    settings = Settings(
        mode=mode,
        app_port=port,
        app_address=r.text("APP_ADDRESS") or "0.0.0.0",
        websocket_origins=tuple(o.strip() for o in origins.split(",") if o.strip()) if origins
        else (f"localhost:{port}", f"127.0.0.1:{port}"),
        num_threads=r.integer("PANEL_NUM_THREADS", 0, 64),
        processes=_processes(r),
        log_level=log_level,
        pg_host=None if mode == EMBEDDED else r.text("PGHOST"),
        pg_port=r.integer("PGPORT", 1, 65535),
        pg_database=r.text("PGDATABASE") or "databricks_postgres",
        pg_user=None if mode == EMBEDDED else r.text("PGUSER"),
        pg_sslmode=sslmode,
        pg_appname=r.text("PGAPPNAME") or "lakebase-panel",
        pg_password=r.text("PGPASSWORD") if mode == PASSWORD else None,
        lakebase_instance=r.text("LAKEBASE_INSTANCE_NAME") if mode == LAKEBASE else None,
        lakebase_endpoint=r.text("PGENDPOINT") if mode == LAKEBASE else None,
        databricks_host=r.text("DATABRICKS_HOST"),
        marketplace_schema=r.identifier("MARKETPLACE_SCHEMA"),
        retail_schema=r.identifier("RETAIL_SCHEMA"),
        fashion_schema=r.identifier("FASHION_SCHEMA"),
        fashion_tables={"productsdb": r.identifier("FASHION_PRODUCTS_TABLE"),
                        "usersdb": r.identifier("FASHION_USERS_TABLE"),
                        "product_image_embeddingsdb": r.identifier("FASHION_EMBEDDINGS_TABLE"),
                        "user_style_featuresdb": r.identifier("FASHION_STYLE_TABLE")},
        app_schema=r.identifier("APP_SCHEMA"),
        pool_size=r.integer("DB_POOL_SIZE", 1, 100),
        max_overflow=r.integer("DB_MAX_OVERFLOW", 0, 200),
        pool_timeout=r.number("DB_POOL_TIMEOUT", 0.1, 300),
        pool_recycle=r.integer("DB_POOL_RECYCLE", 1, 3000),
        connect_timeout=r.integer("DB_CONNECT_TIMEOUT", 1, 120),
        statement_timeout_ms=r.integer("DB_STATEMENT_TIMEOUT_MS", 100, 3_600_000),
        embedded_data_dir=Path(r.text("EMBEDDED_DATA_DIR") or ".pgdata").expanduser().resolve(),
        demo_scale=r.number("DEMO_SCALE", 0.01, 1000),
        order_editors=_editors(r.text("ORDER_EDITORS"), mode),
        timezone=_timezone(r.text("APP_TIMEZONE") or "UTC", problems),
        genie_space_id=r.text("GENIE_SPACE_ID"),
        serving_endpoint=r.text("SERVING_ENDPOINT") or "databricks-claude-sonnet-4-5",
        dashboard_id=r.text("DASHBOARD_ID"),
        assistant_timeout=r.number("ASSISTANT_TIMEOUT", 5, 600),
        genie_per_minute=r.integer("GENIE_QUESTIONS_PER_MINUTE", 1, 600),
        assistant_as_user=r.boolean("ASSISTANT_AS_USER"),
        warehouse_id=r.text("DATABRICKS_WAREHOUSE_ID"),
        assistant_reader_role=r.identifier("ASSISTANT_READER_ROLE"),
        databricks_available=bool(r.text("DATABRICKS_HOST") or r.text("DATABRICKS_CONFIG_PROFILE")),
    )
    problems += r.problems
    if problems:
        raise SettingsError(problems)
    return settings
