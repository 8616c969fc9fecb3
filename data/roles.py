"""The database roles the app relies on, and the one list of what the assistant may read.

- The app's own role reads and writes the app-owned tables (on the embedded default a login role
  that owns its database, never a superuser; on Lakebase the app's service principal).
- The assistant's reader (`ASSISTANT_READER_ROLE`, NOLOGIN) may SELECT exactly the tables in
  `assistant_tables` and nothing else. Every query the app runs for the assistant switches to it
  (`SET LOCAL ROLE`), so PostgreSQL itself enforces the list; the SQL guard's parser is the
  second line. The app's role must be a member of the reader to switch to it.

Creating a role needs CREATEROLE: the embedded server does it as its superuser at start; on
Lakebase `python -m data.setup schema --grant-to <app role>` does it (run by someone allowed to).
"""
from __future__ import annotations

import logging

from sqlalchemy import Connection, text

from .tables import Tables, qualified, quote

log = logging.getLogger(__name__)

DEFAULT_READER = "assistant_reader"
# The tables the assistant may read: the marketplace gold tables, the orders and the fashion catalog.
# Never the app's own bookkeeping (the assistant's log holds other people's questions).
ASSISTANT_DOMAINS = ("marketplace", "retail", "fashion")


def assistant_tables(tables: Tables) -> list[tuple[str, str]]:
    """(schema, table) of every table the assistant may read, as named in the database."""
    return [(tables.schemas[d], t) for d in ASSISTANT_DOMAINS for t in tables.tables_of(d)]


def create_reader_sql(reader: str, members: list[str]) -> list[str]:
    """The reader role (if missing) and the right of each member (the app's role) to switch to it."""
    statements = [f"""DO $$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(reader)}) THEN
            CREATE ROLE {quote(reader)} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
        END IF; END $$"""]
    statements += [f"GRANT {quote(reader)} TO {quote(member)}" for member in members]
    return statements


def reader_grants_sql(tables: Tables, reader: str, domains: tuple[str, ...] = ASSISTANT_DOMAINS,
                      present: set[tuple[str, str]] | None = None) -> list[str]:
    """USAGE on the schemas and SELECT on each table of `domains` the assistant may read (only those
    in `present`, when given: synced tables may not have arrived yet)."""
    statements = []
    for domain in domains:
        if domain not in ASSISTANT_DOMAINS:
            continue
        schema = tables.schemas[domain]
        names = [t for t in tables.tables_of(domain) if present is None or (schema, t) in present]
        if names:
            statements.append(f"GRANT USAGE ON SCHEMA {tables.schema(domain)} TO {quote(reader)}")
            statements += [f"GRANT SELECT ON {qualified(schema, t)} TO {quote(reader)}" for t in names]
    return statements


def present_tables(conn: Connection, tables: Tables) -> set[tuple[str, str]]:
    """Which of the assistant's tables exist in this database."""
    rows = conn.execute(text("SELECT table_schema, table_name FROM information_schema.tables "
                             "WHERE table_schema = ANY(:schemas)"),
                        {"schemas": sorted({s for s, _ in assistant_tables(tables)})}).all()
    return {(r[0], r[1]) for r in rows} & set(assistant_tables(tables))


def reader_exists(conn: Connection, reader: str) -> bool:
    return bool(conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": reader}).scalar())


def grant_reader(conn: Connection, tables: Tables, reader: str, domains: tuple[str, ...]) -> None:
    """Give the reader SELECT on the assistant's tables of `domains` (those this role owns; a grant
    on a table owned by someone else only warns, and `data.setup check` reports what is missing)."""
    if not reader_exists(conn, reader):
        log.warning("the assistant's reader role %s does not exist; its queries will be refused until "
                    "python -m data.setup schema creates it", reader)
        return
    for statement in reader_grants_sql(tables, reader, domains):
        conn.exec_driver_sql(statement)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
