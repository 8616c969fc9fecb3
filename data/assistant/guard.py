"""The SQL guard: what the assistant may run, and how.

Any SQL the app runs for the assistant (a user's `/sql`, or SQL Claude wrote) is parsed with
sqlglot and accepted only if it is exactly one read-only query (SELECT, with CTEs and set
operations) over the app's own tables, calling no function with side effects. The accepted
query is re-rendered from the parse tree, limited to `ROW_LIMIT` rows (one more is fetched to
tell the user the result was cut), and run in a READ ONLY transaction with a statement timeout.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlalchemy import text

from ..database import Database, to_frame
from ..errors import ValidationError
from ..tables import Tables

ROW_LIMIT = 1000
MAX_SQL_LENGTH = 20_000
STATEMENT_TIMEOUT_MS = 10_000
# Functions that write, wait, reach outside the database or read server files.
FORBIDDEN_FUNCTIONS = {
    "set_config", "nextval", "setval", "currval", "lastval", "txid_current", "query_to_xml", "query_to_json",
    "query_to_xml_and_xmlschema", "table_to_xml", "table_to_xmlschema", "cursor_to_xml", "database_to_xml",
    "schema_to_xml", "dblink", "copy", "lo_import", "lo_export", "current_setting",
}
FORBIDDEN_PREFIXES = ("pg_", "lo_", "dblink", "txid_")
WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
               exp.Copy, exp.Grant, exp.TruncateTable, exp.Set, exp.Transaction, exp.Commit, exp.Rollback,
               exp.LoadData, exp.Use)


@dataclass(frozen=True)
class GuardedQuery:
    sql: str                     # what runs: the re-rendered, limited query
    tables: tuple[str, ...]      # schema.table names it reads


@dataclass
class GuardedResult:
    frame: pd.DataFrame
    truncated: bool
    sql: str
    seconds: float


class SqlGuard:
    def __init__(self, db: Database, tables: Tables, *, domains=("marketplace", "retail", "fashion"),
                 row_limit: int = ROW_LIMIT, timeout_ms: int = STATEMENT_TIMEOUT_MS):
        self.db, self.row_limit, self.timeout_ms = db, row_limit, timeout_ms
        self.allowed: dict[tuple[str, str], None] = {}
        for domain in domains:
            for table in tables.tables_of(domain):
                self.allowed[(tables.schemas[domain].lower(), table.lower())] = None
        by_name: dict[str, list[str]] = {}
        for schema, table in self.allowed:
            by_name.setdefault(table, []).append(schema)
        self._schema_of = {t: s[0] for t, s in by_name.items() if len(s) == 1}

    @property
    def allowed_tables(self) -> list[str]:
        return [f"{s}.{t}" for s, t in self.allowed]

    def check(self, sql: str) -> GuardedQuery:
        """Accept and rewrite `sql`, or raise ValidationError saying why not."""
        if not sql or not sql.strip():
            raise ValidationError("Write a SELECT query after /sql.")
        if len(sql) > MAX_SQL_LENGTH:
            raise ValidationError(f"The query is {len(sql):,} characters long; the limit is {MAX_SQL_LENGTH:,}.")
        try:
            statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
        except ParseError as exc:
            first = exc.errors[0] if exc.errors else {}
            where = f" near line {first.get('line')}, column {first.get('col')}" if first.get("line") else ""
            raise ValidationError(f"The query could not be read as PostgreSQL{where}.") from None
        if not statements:
            raise ValidationError("Write a SELECT query after /sql.")
        if len(statements) != 1:
            raise ValidationError(f"Exactly one statement is allowed; this has {len(statements)}.")
        tree = statements[0]
        if not isinstance(tree, exp.Query) or isinstance(tree, exp.Values):
            raise ValidationError(f"Only SELECT queries are allowed, not {tree.key.upper()}.")
        self._refuse_writes(tree)
        self._refuse_functions(tree)
        tables = self._qualify_tables(tree)
        limited = self._limit(tree)
        return GuardedQuery(limited.sql(dialect="postgres"), tables)

    def _refuse_writes(self, tree: exp.Expression) -> None:
        for node in tree.walk():
            if isinstance(node, WRITE_NODES):
                raise ValidationError(f"Only reading is allowed; the query contains {node.key.upper()}.")
            if isinstance(node, exp.Into):
                raise ValidationError("SELECT … INTO creates a table; only reading is allowed.")
            if isinstance(node, exp.Lock):
                raise ValidationError("Row locks (FOR UPDATE/SHARE) are not allowed.")

    def _refuse_functions(self, tree: exp.Expression) -> None:
        for node in tree.find_all(exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in FORBIDDEN_FUNCTIONS or name.startswith(FORBIDDEN_PREFIXES):
                raise ValidationError(f"The function {name}() is not allowed in assistant queries.")

    def _qualify_tables(self, tree: exp.Expression) -> tuple[str, ...]:
        """Every table must be one of the app's; unqualified names get their schema."""
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        seen = []
        for table in tree.find_all(exp.Table):
            name, schema, catalog = table.name.lower(), table.db.lower(), table.catalog
            if not name:
                raise ValidationError("Table functions are not allowed; name the tables to read.")
            if catalog:
                raise ValidationError(f"{table.sql(dialect='postgres')} names another database or catalog; only "
                                      "the app's tables may be read.")
            if not schema and name in ctes:
                continue
            if not schema:
                schema = self._schema_of.get(name, "")
                if not schema:
                    raise ValidationError(f"'{table.name}' is not one of the tables the assistant may read "
                                          f"({', '.join(sorted(self.allowed_tables))}).")
                table.set("db", exp.to_identifier(schema))
            if (schema, name) not in self.allowed:
                raise ValidationError(f"'{schema}.{name}' is not one of the tables the assistant may read.")
            seen.append(f"{schema}.{name}")
        if not seen:
            raise ValidationError("The query reads no table of this app.")
        return tuple(dict.fromkeys(seen))

    def _limit(self, tree: exp.Query) -> exp.Query:
        """At most `row_limit` rows. When the app imposes the limit it asks for one row more, so
        the user can be told the result was cut; a smaller LIMIT of the user's own is kept."""
        limit = tree.args.get("limit")
        if limit is not None:
            value = limit.expression
            if not (isinstance(value, exp.Literal) and value.is_int):
                raise ValidationError("LIMIT must be a whole number.")
            if int(value.this) <= self.row_limit:
                return tree
        return tree.limit(self.row_limit + 1, copy=True)

    def run(self, sql: str) -> GuardedResult:
        """Check, then run in a read-only transaction with a statement timeout."""
        guarded = self.check(sql)
        started = time.perf_counter()
        with self.db.transaction("assistant_sql") as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(self.timeout_ms)})
            # Straight to the driver, without parameters: the query's own % and : are literal text.
            with conn.connection.driver_connection.cursor() as cursor:
                cursor.execute(guarded.sql)
                rows, columns = cursor.fetchall(), [c.name for c in cursor.description]
        frame = to_frame(rows, columns)
        truncated = len(frame) > self.row_limit
        return GuardedResult(frame.head(self.row_limit), truncated, guarded.sql, time.perf_counter() - started)
