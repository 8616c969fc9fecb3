"""Creating the schema from the SQL files in data/sql/, idempotently.

Each domain's file uses `{{schema}}` where its (configured, quoted) schema name goes. On the
embedded default every domain is created; on Lakebase only the app-owned ones are, because
the marketplace and fashion tables arrive as synced tables.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

from sqlalchemy import text

from .database import Database
from .roles import DEFAULT_READER, grant_reader
from .tables import Tables, quote

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
SYNCED_DOMAINS = ("marketplace", "fashion")
APP_OWNED_DOMAINS = ("retail", "app")
ALL_DOMAINS = SYNCED_DOMAINS + APP_OWNED_DOMAINS
_LOCK_KEY = 7_240_611  # advisory lock: two processes starting together create the schema once


def sql_file(name: str, domain: str, tables: Tables) -> str:
    """A schema file with the domain's schema in place of {{schema}}, and tables the settings rename
    (synced tables may be named otherwise) under their names in the database."""
    script = (SQL_DIR / f"{name}.sql").read_text().replace("{{schema}}", tables.schema(domain))
    for table, renamed in tables.renamed.items():
        script = re.sub(rf"(?<=\.){re.escape(table)}\b", quote(renamed), script)
    return script


def schema_sql(domain: str, tables: Tables) -> str:
    return sql_file(domain, domain, tables)


def create_schema(db: Database, tables: Tables, domains: tuple[str, ...] = ALL_DOMAINS, *,
                  reader: str | None = DEFAULT_READER) -> None:
    """The domains' tables, and (when `reader` is given) the assistant reader's SELECT on those of them
    it may read."""
    with db.transaction("create_schema") as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        for domain in domains:
            db.run_script(conn, schema_sql(domain, tables))
            log.info("schema ready domain=%s schema=%s", domain, tables.schemas[domain])
        if reader:
            grant_reader(conn, tables, reader, domains)


def drop_schema(db: Database, tables: Tables, domains: tuple[str, ...]) -> None:
    with db.transaction("drop_schema") as conn:
        for domain in domains:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {tables.schema(domain)} CASCADE")


def missing_tables(db: Database, tables: Tables, domains: tuple[str, ...] = ALL_DOMAINS) -> list[str]:
    """Schema-qualified names of expected tables that do not exist (or are not visible to us)."""
    expected = [(tables.schemas[d], t) for d in domains for t in tables.tables_of(d)]
    rows = db.rows("missing_tables",
                   "SELECT table_schema, table_name FROM information_schema.tables "
                   "WHERE table_schema = ANY(:schemas)",
                   {"schemas": sorted({s for s, _ in expected})})
    present = {(r["table_schema"], r["table_name"]) for r in rows}
    return [f"{s}.{t}" for s, t in expected if (s, t) not in present]
