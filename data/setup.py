"""One-off setup of a real workspace, from the command line (settings from the environment):

    python -m data.setup schema [--grant-to ROLE ...]   app-owned tables, and grants for the app's role
    python -m data.setup demo-data [--replace] [--scale N]   the generated demo data, for an empty workspace
    python -m data.setup genie-space --warehouse ID --catalog NAME   a Genie space over these tables
    python -m data.setup indexes [--apply]               the catalog's indexes (printed, or applied)
    python -m data.setup check                           the configuration against the workspace

Each command prints one line per thing it did or checked; a failure prints its reason and a
fix, changes nothing (every database change is one transaction) and exits non-zero.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Callable


from .errors import AppError, classify
from .roles import ASSISTANT_DOMAINS, assistant_tables, create_reader_sql, present_tables, reader_grants_sql
from .schema import (ALL_DOMAINS, APP_OWNED_DOMAINS, create_schema, drop_schema, missing_tables, schema_sql,
                     sql_file)
from .settings import EMBEDDED, LAKEBASE, Settings, SettingsError, load_settings
from .tables import Tables, qualified, quote

DEMO_DOMAINS = ("marketplace", "retail", "fashion")
GENIE_TITLE = "Lakebase Panel: orders and marketplace"
GENIE_TABLES = {"retail": ("orders", "order_items", "customers", "products", "order_status_history"),
                "marketplace": ("city_investment", "city_funnel", "property_performance", "amenity_lift",
                                "device_funnel", "device_diagnosis")}
GENIE_INSTRUCTIONS = (
    "Orders: one row per order in orders (status, totals, customer_id, created_at, modified_at, version); "
    "its lines are order_items (sku, quantity, unit_price); customers and products describe them. "
    "Statuses move pending -> confirmed -> shipped -> delivered, or to cancelled / returned; "
    "order_status_history has every change. Revenue is the order total of orders that are not cancelled. "
    "'Today' means the current date in UTC.\n"
    "Marketplace: city_investment has one row per city (demand = total_viewers, conversion_rate in %, "
    "estimated_revenue, quadrant); city_funnel has daily funnel counts per city; property_performance one row "
    "per property; amenity_lift the confirmation lift (%) per amenity, city and property type; device_funnel "
    "weekly counts per device; device_diagnosis the device gap per city.")
GENIE_QUESTIONS = (
    "How many orders were placed today, by status?",
    "What is the revenue per day over the last 30 days?",
    "Which 10 customers spent the most this quarter?",
    "Which products sold the most units last week?",
    "Which cities have the highest conversion rate?",
    "Which amenities lift confirmations most in Phuket?",
)


class Output:
    """One line per step: `ok`, `did`, `FAIL` (with a fix)."""

    def __init__(self, write: Callable[[str], None] = print):
        self.write, self.failures = write, 0

    def ok(self, what: str) -> None:
        self.write(f"ok    {what}")

    def did(self, what: str) -> None:
        self.write(f"done  {what}")

    def fail(self, what: str, fix: str) -> None:
        self.failures += 1
        self.write(f"FAIL  {what}\n      fix: {fix}")


def _backend(settings: Settings):
    from .backend import open_backend
    return open_backend(settings)


# -- schema --------------------------------------------------------------------------------

def grants_sql(tables, role: str) -> list[str]:
    """Read-write on the app-owned tables (no DELETE: orders are cancelled, history is kept), read on
    the synced ones."""
    who = quote(role)
    statements = []
    for domain in APP_OWNED_DOMAINS:
        schema = tables.schema(domain)
        statements += [f"GRANT USAGE ON SCHEMA {schema} TO {who}",
                       f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} TO {who}",
                       f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {who}"]
    return statements


def cmd_schema(settings: Settings, args, out: Output) -> None:
    backend = _backend(settings)
    try:
        db, tables = backend.db, backend.tables
        for role in args.grant_to:
            if not db.scalar("role_exists", "SELECT count(*) FROM pg_roles WHERE rolname = :r", {"r": role}):
                out.fail(f"role {role} does not exist in this database",
                         "for the app's service principal use its client ID (the app's DATABRICKS_CLIENT_ID); "
                         "on Lakebase add it as a Postgres role first")
                return
        reader = settings.assistant_reader_role
        with db.transaction("setup_schema") as conn:
            for domain in APP_OWNED_DOMAINS:
                db.run_script(conn, schema_sql(domain, tables))
            for role in args.grant_to:
                for statement in grants_sql(tables, role):
                    conn.exec_driver_sql(statement)
        for domain in APP_OWNED_DOMAINS:
            out.did(f"schema {tables.schemas[domain]}: {', '.join(tables.tables_of(domain))}")
        for role in args.grant_to:
            out.did(f"granted {role} read and write on the app-owned tables (no DELETE)")
        if not args.grant_to:
            out.write("      no grants given (--grant-to <the app's service principal client ID>)")
        _setup_reader(db, tables, reader, args.grant_to, out)
    finally:
        backend.close()


def _setup_reader(db, tables, reader: str, members: list[str], out: Output) -> None:
    """The assistant's reader role: created if missing (needs CREATEROLE), SELECT on exactly the
    tables the assistant may read (needs ownership of them or GRANT OPTION), and each member (the
    app's role) allowed to switch to it. One transaction: all or nothing."""
    try:
        with db.transaction("setup_reader") as conn:
            present = present_tables(conn, tables)
            for statement in create_reader_sql(reader, members) + reader_grants_sql(tables, reader, ASSISTANT_DOMAINS,
                                                                                    present):
                conn.exec_driver_sql(statement)
    except AppError as exc:
        out.fail(f"assistant reader role {reader}: {exc.message} ({exc.detail.splitlines()[0] if exc.detail else ''})",
                 "run this as a role with CREATEROLE that owns (or may grant SELECT on) the marketplace, orders "
                 "and fashion tables, e.g. a member of databricks_superuser; until then every assistant query "
                 "is refused")
        return
    out.did(f"assistant reader role {reader}: SELECT on {len(present)} tables "
            f"({', '.join(ASSISTANT_DOMAINS)}), nothing else; {', '.join(members) or 'no role'} may switch to it")
    absent = [f"{s}.{t}" for s, t in assistant_tables(tables) if (s, t) not in present]
    if absent:
        out.write(f"      not here yet, so not granted: {', '.join(absent)} (run this again once they are synced)")
    for member in members:
        try:
            with db.transaction("setup_temp_file_limit") as conn:
                conn.exec_driver_sql(f"GRANT SET ON PARAMETER temp_file_limit TO {quote(member)}")
        except AppError:
            pass                                    # said below: only a superuser may grant it
        if db.scalar("temp_file_limit", "SELECT has_parameter_privilege(:m, 'temp_file_limit', 'SET')", {"m": member}):
            out.did(f"{member} may cap the assistant's temporary files (temp_file_limit)")
        else:
            out.write(f"      {member} may not set temp_file_limit (a superuser grants SET ON PARAMETER "
                      "temp_file_limit); assistant queries are still capped in time, memory per sort and result size")


def check_reader(db, tables, reader: str) -> list[str]:
    """What stops the assistant's queries from running as the reader role; empty when nothing."""
    rows = db.rows("check_reader", """
        SELECT (SELECT count(*) FROM pg_roles WHERE rolname = :r) AS exists,
               pg_has_role(current_user, oid, 'SET') AS may_switch FROM pg_roles WHERE rolname = :r""",
                   {"r": reader})
    if not rows:
        return [f"the assistant's reader role {reader} does not exist"]
    problems = [] if rows[0]["may_switch"] else [f"the app's role may not switch to {reader}"]
    for schema, table in assistant_tables(tables):
        readable = db.scalar("check_reader_table", "SELECT has_table_privilege(:r, :t, 'SELECT')",
                             {"r": reader, "t": qualified(schema, table)}) if _exists(db, schema, table) else True
        if not readable:
            problems.append(f"{reader} may not read {schema}.{table}")
    return problems


def _exists(db, schema: str, table: str) -> bool:
    return bool(db.scalar("check_table", "SELECT to_regclass(:t) IS NOT NULL", {"t": qualified(schema, table)}))


# -- demo data -----------------------------------------------------------------------------

def cmd_demo_data(settings: Settings, args, out: Output) -> None:
    from . import demo
    from .backend import schema_fingerprint
    backend = _backend(settings)
    try:
        db, tables = backend.db, backend.tables
        create_schema(db, tables, ALL_DOMAINS)
        filled = {}
        for domain in DEMO_DOMAINS:
            for table in tables.tables_of(domain):
                rows = db.scalar("setup_count", f"SELECT count(*) FROM {qualified(tables.schemas[domain], table)}")
                if rows:
                    filled[f"{tables.schemas[domain]}.{table}"] = rows
        if filled and not args.replace:
            listing = ", ".join(f"{name} ({rows:,} rows)" for name, rows in filled.items())
            out.fail(f"these tables already hold rows, so nothing was loaded: {listing}",
                     "run again with --replace to drop and reload the demo tables (app bookkeeping is kept)")
            return
        if filled:
            drop_schema(db, tables, DEMO_DOMAINS)
            create_schema(db, tables, DEMO_DOMAINS)
            out.did(f"dropped and recreated {', '.join(tables.schemas[d] for d in DEMO_DOMAINS)}")
        demo.load_demo_data(db, tables, scale=args.scale, progress=not args.quiet,
                            meta={"schema_fingerprint": schema_fingerprint(tables)})
        for domain in DEMO_DOMAINS:
            out.did(f"loaded demo data into {tables.schemas[domain]}")
    finally:
        backend.close()


# -- Genie space ---------------------------------------------------------------------------

def serialized_space(settings: Settings, catalog: str, examples: list[tuple[str, str]] = ()) -> str:
    """The space's tables, instructions, sample questions and (from the app's verified questions)
    example SQL, in Genie's serialized-space format."""
    schemas = {"retail": settings.retail_schema, "marketplace": settings.marketplace_schema}
    identifiers = sorted(f"{catalog}.{schemas[d]}.{t}" for d, names in GENIE_TABLES.items() for t in names)
    return json.dumps({
        "version": 1,
        "config": {"sample_questions": [{"id": uuid.uuid5(uuid.NAMESPACE_URL, q).hex, "question": [q]}
                                        for q in GENIE_QUESTIONS]},
        "data_sources": {"tables": [{"identifier": name} for name in identifiers]},
        "instructions": {"text_instructions": [{"id": uuid.uuid5(uuid.NAMESPACE_URL, "instructions").hex,
                                                "content": [GENIE_INSTRUCTIONS]}],
                         **({"example_question_sqls": [
                             {"id": uuid.uuid5(uuid.NAMESPACE_URL, "verified:" + question).hex, "question": [question],
                              "sql": [sql]} for question, sql in examples]} if examples else {})},
    })


def _verified_examples(settings: Settings, out: Output) -> list[tuple[str, str]]:
    """The app's verified questions, as example SQL for the space; none when the database is away."""
    from .assistant.verified import VerifiedQuestions
    backend = None
    try:
        backend = _backend(settings)
        examples = VerifiedQuestions(backend.db, backend.tables).examples()
    except Exception as exc:  # no database, or no schema yet: the space is still worth saving
        out.write(f"      no example SQL: the verified questions could not be read ({classify(exc).message})")
        return []
    finally:
        if backend is not None:
            backend.close()
    out.ok(f"{len(examples)} verified question{' goes' if len(examples) == 1 else 's go'} in as example SQL")
    return examples


def _find_space(w, title: str) -> str | None:
    token = None
    while True:
        page = w.genie.list_spaces(page_size=100, page_token=token)
        for space in page.spaces or []:
            if space.title == title:
                return space.space_id
        token = page.next_page_token
        if not token:
            return None


def cmd_genie_space(settings: Settings, args, out: Output) -> None:
    from .workspace import workspace_client
    warehouse = args.warehouse or settings.warehouse_id
    if not warehouse:
        out.fail("no SQL warehouse for the Genie space", "pass --warehouse <id> or set DATABRICKS_WAREHOUSE_ID")
        return
    w = workspace_client()
    payload = serialized_space(settings, args.catalog, _verified_examples(settings, out))
    description = ("Orders (the same tables the app edits) and the marketplace gold tables, for questions in "
                   "plain language from the Lakebase Panel app.")
    try:
        space_id = args.space_id or settings.genie_space_id or _find_space(w, args.title)
        if space_id:
            w.genie.update_space(space_id, title=args.title, description=description, serialized_space=payload,
                                 warehouse_id=warehouse)
            out.did(f"updated Genie space {space_id} ({len(json.loads(payload)['data_sources']['tables'])} tables)")
        else:
            space_id = w.genie.create_space(warehouse, payload, title=args.title,
                                            description=description).space_id
            out.did(f"created Genie space {space_id}")
    except Exception as exc:
        error = classify(exc)
        out.fail(f"Genie space not saved: {error.message}",
                 "check --warehouse (an id from SQL Warehouses) and that you may create Genie spaces")
        return
    out.write(f"      set GENIE_SPACE_ID={space_id} for the app")


# -- indexes -------------------------------------------------------------------------------

def index_statements(tables) -> list[str]:
    """The catalog's index statements from the schema files (filtered columns, then the vector index)."""
    script = schema_sql("fashion", tables) + "\n" + sql_file("fashion_vector_index", "fashion", tables)
    statements = []
    for statement in script.split(";"):
        lines = [line for line in statement.strip().splitlines() if not line.lstrip().startswith("--")]
        body = " ".join(" ".join(lines).split())
        if body.upper().startswith(("CREATE INDEX", "CREATE EXTENSION")):
            statements.append(body + ";")
    return statements


def cmd_indexes(settings: Settings, args, out: Output) -> None:
    tables = Tables.from_settings(settings)
    statements = index_statements(tables)
    if not args.apply:
        for statement in statements:
            out.write(statement)
        return
    backend = _backend(settings)
    try:
        with backend.db.transaction("setup_indexes") as conn:
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            for statement in statements:
                conn.exec_driver_sql(statement)
        for statement in statements:
            out.did(statement)
    finally:
        backend.close()


# -- check ---------------------------------------------------------------------------------

def cmd_check(settings: Settings, args, out: Output) -> None:
    out.ok(f"settings: {settings.mode_label}")
    w = None
    if settings.mode == LAKEBASE or settings.genie_space_id or settings.databricks_available:
        from .workspace import workspace_client
        try:
            w = workspace_client()
            who = w.current_user.me().user_name
            out.ok(f"workspace: signed in as {who}")
        except Exception as exc:
            w = None
            out.fail(f"workspace: {classify(exc).message}",
                     "set DATABRICKS_HOST with DATABRICKS_TOKEN, or the app's DATABRICKS_CLIENT_ID/SECRET")
    backend = None
    try:
        backend = _backend(settings)
        if settings.mode == LAKEBASE:
            target = settings.lakebase_instance or settings.lakebase_endpoint
            out.ok(f"lakebase: {target} reachable at {backend.host}, token minted for {backend.user}")
        version = backend.db.server_version()
        out.ok(f"database: PostgreSQL {version}")
    except AppError as exc:
        out.fail(f"database: {exc.message}", _database_fix(settings))
    if backend is not None:
        try:
            missing = missing_tables(backend.db, backend.tables, APP_OWNED_DOMAINS)
            synced = missing_tables(backend.db, backend.tables, ("marketplace", "fashion"))
            if missing:
                out.fail(f"app tables missing: {', '.join(missing)}", "python -m data.setup schema")
            else:
                out.ok("app tables: present")
            if synced:
                out.fail(f"synced tables missing: {', '.join(synced)}",
                         "sync the gold and fashion tables to this database (or python -m data.setup demo-data "
                         "for demo data), or set MARKETPLACE_SCHEMA / FASHION_SCHEMA")
            else:
                out.ok("synced tables: present")
            reader_problems = check_reader(backend.db, backend.tables, settings.assistant_reader_role)
            if reader_problems:
                out.fail(f"assistant reader: {'; '.join(reader_problems)}",
                         "python -m data.setup schema --grant-to <the app's role> (as a role with CREATEROLE)")
            else:
                out.ok(f"assistant reader: {settings.assistant_reader_role} reads exactly the assistant's tables")
        finally:
            backend.close()
    _check_services(settings, w, out)


def _database_fix(settings: Settings) -> str:
    if settings.mode == LAKEBASE:
        return ("check LAKEBASE_INSTANCE_NAME or PGENDPOINT, that the instance is running, and that the app's "
                "identity has a Postgres role")
    if settings.mode == EMBEDDED:
        return "check EMBEDDED_DATA_DIR is writable"
    return "check PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE"


def _check_services(settings: Settings, w, out: Output) -> None:
    if w is None:
        out.write("      Genie and serving endpoint not checked (no workspace)")
        return
    if settings.genie_space_id:
        try:
            space = w.genie.get_space(settings.genie_space_id)
            out.ok(f"genie space: {space.title or settings.genie_space_id}")
        except Exception as exc:
            out.fail(f"genie space {settings.genie_space_id}: {classify(exc).message}",
                     "python -m data.setup genie-space creates one; the app needs CAN_RUN on it")
    else:
        out.write("      GENIE_SPACE_ID not set: the assistant will use Claude or /sql only")
    try:
        endpoint = w.serving_endpoints.get(settings.serving_endpoint)
        state = endpoint.state.ready.value if endpoint.state and endpoint.state.ready else "unknown"
        out.ok(f"serving endpoint: {settings.serving_endpoint} ({state})")
    except Exception as exc:
        out.fail(f"serving endpoint {settings.serving_endpoint}: {classify(exc).message}",
                 "set SERVING_ENDPOINT to a chat endpoint the app may query (CAN_QUERY)")


# -- command line --------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m data.setup", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="create the app-owned tables, with grants")
    schema.add_argument("--grant-to", action="append", default=[], metavar="ROLE",
                        help="Postgres role to grant read and write on them (the app's service principal)")
    data = commands.add_parser("demo-data", help="load generated demo data")
    data.add_argument("--replace", action="store_true", help="drop and reload demo tables that hold rows")
    data.add_argument("--scale", type=float, default=1.0, help="size factor (orders: 5,000 x scale)")
    data.add_argument("--quiet", action="store_true", help="no progress bar")
    genie = commands.add_parser("genie-space", help="create or update the Genie space")
    genie.add_argument("--warehouse", help="SQL warehouse id for the space (default: DATABRICKS_WAREHOUSE_ID)")
    genie.add_argument("--catalog", required=True, help="Unity Catalog catalog that holds these tables")
    genie.add_argument("--title", default=GENIE_TITLE)
    genie.add_argument("--space-id", help="update this space (default: GENIE_SPACE_ID, else one with the title)")
    indexes = commands.add_parser("indexes", help="print (or --apply) the catalog's indexes")
    indexes.add_argument("--apply", action="store_true")
    commands.add_parser("check", help="validate the configuration against the workspace")
    return root


COMMANDS = {"schema": cmd_schema, "demo-data": cmd_demo_data, "genie-space": cmd_genie_space,
            "indexes": cmd_indexes, "check": cmd_check}


def main(argv: list[str] | None = None, write: Callable[[str], None] = print) -> int:
    args = parser().parse_args(argv)
    out = Output(write)
    try:
        settings = load_settings()
    except SettingsError as exc:
        out.fail(f"settings: {exc}", "set or remove the variables named above")
        return 2
    try:
        COMMANDS[args.command](settings, args, out)
    except AppError as exc:
        out.fail(f"{args.command}: {exc.message}", "see the message; nothing was changed")
    return 1 if out.failures else 0


if __name__ == "__main__":
    sys.exit(main())
