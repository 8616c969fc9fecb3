"""Settings: every environment variable the app reads, declared once and validated together.

`VARIABLES` declares each variable once: its name, the `Settings` field it fills, its kind, its
default, its bounds or choices, whether it is a secret, and what it means. The `Settings` class,
the loader and the README's configuration table (`readme_table()`, kept equal by a test) are all
derived from it. `load_settings()` returns a frozen `Settings` or raises `SettingsError` naming
every missing or conflicting variable at once. A few values depend on others (the database mode
decides which credentials count, and some defaults); `_derive` is where those rules live.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, make_dataclass
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent

EMBEDDED, PASSWORD, LAKEBASE = "embedded", "password", "lakebase"
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TEXT, INT, NUMBER, BOOL, NAME, CHOICE, LIST, PROCESSES, PATH = (
    "text", "int", "number", "bool", "name", "choice", "list", "processes", "path")
AUTO = "auto"


@dataclass(frozen=True)
class Var:
    name: str                                # the environment variable
    field: str | None                        # the Settings attribute it fills (None: read by the SDK)
    default: str | None
    doc: str
    kind: str = TEXT
    bounds: tuple[float, float] | None = None
    choices: tuple[str, ...] = ()
    secret: bool = False
    shown_default: str | None = None         # the README's words for a default that depends on others


VARIABLES: tuple[Var, ...] = (
    # Serving
    Var("DATABRICKS_APP_PORT", "app_port", "8000", "Port the app listens on (Databricks Apps sets it).", INT,
        (1, 65535)),
    Var("APP_ADDRESS", "app_address", "0.0.0.0", "Address the app binds to."),
    Var("ALLOW_WEBSOCKET_ORIGIN", "websocket_origins", None,
        "Comma-separated hosts allowed to open the app's websocket (the app's public host on Databricks).", LIST,
        shown_default="localhost and 127.0.0.1 on the app port"),
    Var("APP_PROCESSES", "processes", AUTO, "Server processes behind the one port, each with its own sessions (a "
        "Python process runs on one core at a time); `auto`: two per CPU the app may use, at most 8.", PROCESSES,
        (1, 16)),
    Var("PANEL_NUM_THREADS", "num_threads", "4",
        "Worker threads for session callbacks in each process (0 = Panel's default pool size).", INT, (0, 64)),
    Var("LOG_LEVEL", "log_level", "INFO", "Log level for the one-line-per-event log on stdout.", CHOICE,
        choices=("DEBUG", "INFO", "WARNING", "ERROR")),
    # Database: as Databricks Apps injects them for a database resource
    Var("PGHOST", "pg_host", None, "PostgreSQL host. Unset (with no Lakebase variable) means the embedded "
                                   "PostgreSQL."),
    Var("PGPORT", "pg_port", "5432", "PostgreSQL port.", INT, (1, 65535)),
    Var("PGDATABASE", "pg_database", "databricks_postgres", "Database name."),
    Var("PGUSER", "pg_user", None, "Role to connect as; on Lakebase the app's service principal client ID."),
    Var("PGHOST_READONLY", "pg_host_readonly", None, "Read-only replica (a hot standby) for reads that may be a "
        "moment stale: marketplace, catalog and assistant. On Lakebase taken from the instance's `read_only_dns` "
        "(readable secondaries) or the endpoint's `read_only_host` when not set.",
        shown_default="none: every read goes to PGHOST"),
    Var("PGPORT_READONLY", "pg_port_readonly", None, "Port of the read-only replica.", INT, (1, 65535),
        shown_default="PGPORT"),
    Var("REPLICA_MAX_LAG_SECONDS", "replica_max_lag", "10", "How far behind the primary the replica may be before "
        "reads go back to the primary (checked every few seconds).", NUMBER, (0.1, 3600)),
    Var("PGSSLMODE", "pg_sslmode", None, "libpq sslmode.", CHOICE, choices=SSL_MODES,
        shown_default="`require` on Lakebase, `prefer` otherwise"),
    Var("PGAPPNAME", "pg_appname", "lakebase-panel", "`application_name` reported to PostgreSQL."),
    Var("PGPASSWORD", "pg_password", None, "Static password: selects the password mode.", secret=True),
    Var("LAKEBASE_INSTANCE_NAME", "lakebase_instance", None, "Lakebase Provisioned instance: tokens from "
                                                             "`w.database`."),
    Var("PGENDPOINT", "lakebase_endpoint", None, "Lakebase Autoscaling endpoint "
        "(`projects/<p>/branches/<b>/endpoints/<e>`): tokens from `w.postgres`."),
    # Databricks credentials (the Databricks SDK reads them; validated here)
    Var("DATABRICKS_HOST", "databricks_host", None, "Workspace URL."),
    Var("DATABRICKS_TOKEN", None, None, "Personal access token (local development).", secret=True),
    Var("DATABRICKS_CLIENT_ID", None, None, "Service principal client ID (injected by Databricks Apps)."),
    Var("DATABRICKS_CLIENT_SECRET", None, None, "Service principal secret (injected by Databricks Apps).",
        secret=True),
    Var("DATABRICKS_CONFIG_PROFILE", "databricks_profile", None,
        "Profile in `~/.databrickscfg` to use instead of the variables above."),
    # Assistant (Genie and Claude are optional: without them the Assistant explains what to set)
    Var("GENIE_SPACE_ID", "genie_space_id", None,
        "Genie space over this app's tables that answers questions in plain language."),
    Var("SERVING_ENDPOINT", "serving_endpoint", "databricks-claude-sonnet-4-5",
        "Serving endpoint of the Claude model that summarises answers, suggests follow-ups and explains failures."),
    Var("DASHBOARD_ID", "dashboard_id", None, "Published AI/BI dashboard to show in the Assistant workspace."),
    Var("ASSISTANT_TIMEOUT", "assistant_timeout", "30", "Seconds a question may take before the assistant gives up.",
        NUMBER, (5, 600)),
    Var("GENIE_QUESTIONS_PER_MINUTE", "genie_per_minute", "5",
        "Questions sent to Genie per minute by the whole app: every process and instance draw from one budget "
        "kept in the database (Genie's limit is per workspace).", INT, (1, 600)),
    Var("ASSISTANT_AS_USER", "assistant_as_user", "false", "With Databricks Apps user authorization on, ask Genie "
        "and Claude as the signed-in user (their X-Forwarded-Access-Token) instead of the app.", BOOL),
    Var("DATABRICKS_WAREHOUSE_ID", "warehouse_id", None,
        "SQL warehouse of the Genie space (python -m data.setup genie-space uses it)."),
    Var("ASSISTANT_EDITORS", "assistant_editors", None, "Who may verify helpful answers from Genie (and remove "
        "verified questions): comma-separated e-mails, or `*` for everyone.", LIST,
        shown_default="everyone on the embedded database, nobody elsewhere"),
    Var("INSIGHTS_EVERY_SECONDS", "insights_every", "300",
        "How often the insight watcher (one for the whole app) checks the data for news; 0 turns it off.", NUMBER,
        (0, 86_400)),
    Var("INSIGHT_MIN_CHANGE_PCT", "insight_min_change_pct", "20",
        "Smallest relative change (percent) that makes an insight.", NUMBER, (1, 1000)),
    Var("INSIGHT_MIN_CONFIDENCE_PCT", "insight_min_confidence_pct", "99.9",
        "How sure (percent) a change must be not to be chance before it makes an insight.", NUMBER, (50, 99.9999)),
    Var("INSIGHT_MIN_SIZE", "insight_min_size", "30",
        "Fewest orders, viewers or listings in the recent period for a change to count (noise is not news).",
        INT, (1, 1_000_000)),
    Var("ASSISTANT_READER_ROLE", "assistant_reader_role", "assistant_reader",
        "Database role (NOLOGIN) every assistant query runs as: it may only SELECT the marketplace, orders and "
        "fashion tables (python -m data.setup schema creates it).", NAME),
    # Tables
    Var("MARKETPLACE_SCHEMA", "marketplace_schema", "marketplace",
        "Schema holding the synced marketplace gold tables.", NAME),
    Var("RETAIL_SCHEMA", "retail_schema", "retail360", "Schema of the app-owned Retail360 orders tables.", NAME),
    Var("FASHION_SCHEMA", "fashion_schema", "fashion_demo", "Schema holding the synced fashion catalog tables.", NAME),
    Var("FASHION_PRODUCTS_TABLE", "fashion_products_table", "productsdb", "Synced table of fashion products.", NAME),
    Var("FASHION_USERS_TABLE", "fashion_users_table", "usersdb", "Synced table of catalog users.", NAME),
    Var("FASHION_EMBEDDINGS_TABLE", "fashion_embeddings_table", "product_image_embeddingsdb",
        "Synced table of product image embeddings.", NAME),
    Var("FASHION_STYLE_TABLE", "fashion_style_table", "user_style_featuresdb",
        "Synced table of user style features.", NAME),
    Var("APP_SCHEMA", "app_schema", "app", "Schema of the app's own bookkeeping tables.", NAME),
    # Pool
    Var("DB_POOL_SIZE", "pool_size", "5", "Connections kept in the pool.", INT, (1, 100)),
    Var("DB_MAX_OVERFLOW", "max_overflow", "15", "Extra connections opened under load.", INT, (0, 200)),
    Var("DB_POOL_TIMEOUT", "pool_timeout", "10", "Seconds to wait for a free connection.", NUMBER, (0.1, 300)),
    Var("DB_POOL_RECYCLE", "pool_recycle", "2700",
        "Seconds after which a connection is replaced (before the token's hour is up).", INT, (1, 3000)),
    Var("DB_CONNECT_TIMEOUT", "connect_timeout", "5", "Seconds to wait when opening a connection.", INT, (1, 120)),
    Var("DB_STATEMENT_TIMEOUT_MS", "statement_timeout_ms", "30000",
        "Server-side limit for one statement, in milliseconds.", INT, (100, 3_600_000)),
    # Orders
    Var("ORDER_EDITORS", "order_editors", None, "Who may change orders: comma-separated e-mails, or `*` for "
        "everyone; everyone else only reads (enforced by the data layer).", LIST,
        shown_default="everyone on the embedded database, nobody elsewhere"),
    Var("APP_TIMEZONE", "timezone", "UTC",
        "Time zone that decides what \"today\" means for order analytics (IANA name)."),
    # Embedded default
    Var("EMBEDDED_DATA_DIR", "embedded_data_dir", str(REPO_ROOT / ".pgdata"),
        "Data directory of the embedded PostgreSQL.", PATH, shown_default="`<repo>/.pgdata`"),
    Var("DEMO_SCALE", "demo_scale", "1", "Size factor for generated demo data (orders: 5,000 × scale).", NUMBER,
        (0.01, 1000)),
)

_BY_NAME = {v.name: v for v in VARIABLES}
SECRET_NAMES = frozenset(v.name for v in VARIABLES if v.secret)


class SettingsError(Exception):
    """The environment cannot start the app; `problems` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Configuration problems:\n" + "\n".join(f"  - {p}" for p in problems))


# -- the Settings class, derived from VARIABLES ----------------------------------------------------

def _mode_label(self) -> str:
    if self.mode == LAKEBASE:
        return "Lakebase Autoscaling" if self.lakebase_endpoint else "Lakebase Provisioned"
    return {EMBEDDED: "Embedded PostgreSQL", PASSWORD: "PostgreSQL (password)"}[self.mode]


def _fashion_tables(self) -> dict[str, str]:
    """The app's name for each fashion table -> its name in the database."""
    return {"productsdb": self.fashion_products_table, "usersdb": self.fashion_users_table,
            "product_image_embeddingsdb": self.fashion_embeddings_table,
            "user_style_featuresdb": self.fashion_style_table}


def _databricks_available(self) -> bool:
    return bool(self.databricks_host or self.databricks_profile)


def _redacted(self) -> dict[str, object]:
    """The settings as shown to people: secrets replaced by whether they are set."""
    secret_fields = {v.field for v in VARIABLES if v.secret and v.field}
    shown: dict[str, object] = {}
    for f in fields(self):
        value = getattr(self, f.name)
        if f.name in secret_fields:
            value = "(set)" if value else "(not set)"
        shown[f.name] = str(value) if isinstance(value, Path) else value
    return shown


Settings = make_dataclass(
    "Settings", [("mode", str), *((v.field, object) for v in VARIABLES if v.field)], frozen=True,
    namespace={"__doc__": "The app's settings: `mode` (embedded, password or lakebase) and one field per variable.",
               "__module__": __name__, "mode_label": property(_mode_label), "fashion_tables": property(_fashion_tables),
               "databricks_available": property(_databricks_available), "redacted": _redacted})


# -- reading --------------------------------------------------------------------------------------

def _raw(env: Mapping[str, str], var: Var) -> str | None:
    raw = env.get(var.name)
    return var.default if raw is None or raw.strip() == "" else raw.strip()


def _read(var: Var, raw: str | None, problems: list[str]):
    """`raw` as the variable's kind, within its bounds; a problem is noted and the default used."""
    if raw is None:
        return [] if var.kind == LIST else None
    low, high = var.bounds or (None, None)
    if var.kind in (INT, NUMBER):
        try:
            value = int(raw) if var.kind == INT else float(raw)
        except ValueError:
            problems.append(f"{var.name}={raw!r} is not a {'whole number' if var.kind == INT else 'number'}")
            return _read(var, var.default, [])
        if low is not None and not low <= value <= high:
            problems.append(f"{var.name}={value:g} is outside {low:g}..{high:g}")
        return value
    if var.kind == BOOL:
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            problems.append(f"{var.name}={raw!r} is not true or false")
            return False
        return raw.lower() in ("true", "1", "yes")
    if var.kind == CHOICE:
        value = next((choice for choice in var.choices if choice.lower() == raw.lower()), raw)
        if value not in var.choices:
            problems.append(f"{var.name}={value!r} is not one of {', '.join(var.choices)}")
        return value
    if var.kind == NAME:
        if len(raw) > 63 or "\x00" in raw:
            problems.append(f"{var.name}={raw!r} is not a valid PostgreSQL name (1-63 characters)")
        return raw
    if var.kind == LIST:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    if var.kind == PATH:
        return Path(raw).expanduser().resolve()
    if var.kind == PROCESSES:
        if raw.lower() == AUTO:
            return AUTO
        if not raw.isdigit() or not low <= int(raw) <= high:
            problems.append(f"{var.name}={raw!r} is not auto or a whole number from {low:g} to {high:g}")
            return 1
        return int(raw)
    return raw


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


def _derive(values: dict, mode: str, env: Mapping[str, str], problems: list[str]) -> None:
    """The rules that tie one setting to others."""
    if mode == EMBEDDED:
        values["pg_host"] = values["pg_user"] = values["pg_host_readonly"] = None
    if mode != PASSWORD:
        values["pg_password"] = None
    if mode != LAKEBASE:
        values["lakebase_instance"] = values["lakebase_endpoint"] = None
    values["pg_sslmode"] = values["pg_sslmode"] or ("require" if mode == LAKEBASE else "prefer")
    port = values["app_port"]
    values["websocket_origins"] = values["websocket_origins"] or (f"localhost:{port}", f"127.0.0.1:{port}")
    for name, field in (("ORDER_EDITORS", "order_editors"), ("ASSISTANT_EDITORS", "assistant_editors")):
        if _raw(env, _BY_NAME[name]) is None:                 # not set: everyone on the embedded database
            values[field] = ("*",) if mode == EMBEDDED else ()
        else:
            values[field] = tuple(sorted({e.lower() for e in values[field]}))
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(values["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"APP_TIMEZONE={values['timezone']!r} is not a time zone name (for example Europe/Paris or "
                        "UTC)")


def load_settings(env: Mapping[str, str] | None = None, *, force_embedded: bool = False) -> "Settings":
    env = os.environ if env is None else env
    mode, problems = _database_mode(env, force_embedded)
    values = {var.field: _read(var, _raw(env, var), problems) for var in VARIABLES if var.field}
    _derive(values, mode, env, problems)
    if problems:
        raise SettingsError(problems)
    return Settings(mode=mode, **values)


# -- the README's table ---------------------------------------------------------------------------

def readme_table() -> str:
    """The configuration table of the README, as Markdown (`python -m data.settings` prints it)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for var in VARIABLES:
        default = var.shown_default or (f"`{var.default}`" if var.default is not None else "—")
        rows.append(f"| `{var.name}` | {default} | {var.doc}{' **Secret.**' if var.secret else ''} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(readme_table())
