"""The SQL guard: what the assistant may run, and how.

Any SQL the app runs for the assistant (a person's `/sql`, or SQL Claude wrote) is held by two
lines of defence:

1. PostgreSQL: the query runs as the assistant's reader role (`SET LOCAL ROLE`), which may SELECT
   the marketplace, orders and fashion tables and nothing else (`data/roles.py`), in a READ ONLY
   transaction with limits on time, memory and temporary files, on a connection that is closed
   afterwards, so nothing the query set survives it. The result is fetched through a server-side
   cursor with each value and the whole result capped in bytes.
2. The parser (sqlglot): exactly one SELECT (CTEs and set operations allowed), every table one of
   the reader's (CTE names resolved in their own scope, so a CTE cannot hide a catalog table
   elsewhere in the statement), every function on an allow-list of what analysts use (aggregates,
   maths, text, dates and times, casts to plain types, conditionals, window functions). The
   accepted query is re-rendered from the parse tree and limited to `ROW_LIMIT` rows (one more
   is fetched to tell the person the result was cut).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.scope import traverse_scope

from ..database import Database, to_frame
from ..errors import AppError, Category, ValidationError, classify_user_query
from ..roles import DEFAULT_READER, assistant_tables
from ..tables import Tables, quote

ROW_LIMIT = 1000
MAX_SQL_LENGTH = 20_000
STATEMENT_TIMEOUT_MS = 10_000
VALUE_BYTES = 100_000              # a bigger value is left empty (and counted)
RESULT_BYTES = 10_000_000          # the result is cut once its values add up to this
WORK_MEM = "32MB"                  # per sort or hash of the query
TEMP_FILE_LIMIT = "256MB"          # temporary files the query may write
FETCH_BATCH = 200

WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
               exp.Copy, exp.Grant, exp.TruncateTable, exp.Set, exp.Transaction, exp.Commit, exp.Rollback,
               exp.LoadData, exp.Use)

# Operators sqlglot models as functions; they compare, combine or pick values and run nothing.
OPERATORS = (exp.Binary, exp.Unary, exp.Connector, exp.Predicate)
# Functions as sqlglot reads them from PostgreSQL (its class for the ones it knows).
ALLOWED_FUNCTIONS = frozenset({
    # aggregates
    "Count", "Sum", "Avg", "Min", "Max", "Stddev", "StddevPop", "StddevSamp", "Variance", "VariancePop",
    "ArrayAgg", "GroupConcat", "LogicalAnd", "LogicalOr", "PercentileCont", "PercentileDisc", "Mode", "Corr",
    "CovarPop", "CovarSamp", "RegrSlope", "RegrIntercept", "RegrR2", "RegrCount", "RegrAvgx", "RegrAvgy",
    "CountIf", "ApproxDistinct",
    # maths
    "Abs", "Ceil", "Floor", "Round", "Trunc", "Sqrt", "Cbrt", "Pow", "Exp", "Ln", "Log", "Sign", "Greatest",
    "Least", "WidthBucket", "Pi", "Degrees", "Radians", "Mod", "IntDiv", "SafeDivide",
    # text
    "Lower", "Upper", "Initcap", "Length", "Substring", "StrPosition", "Trim", "Replace", "Concat", "ConcatWs",
    "Left", "Right", "Reverse", "SplitPart", "RegexpReplace", "RegexpLike", "RegexpILike", "StartsWith",
    "TimeToStr", "ToNumber", "StrToDate", "StrToTime", "Ascii", "Chr", "Translate",
    # dates and times
    "CurrentDate", "CurrentTimestamp", "CurrentTime", "TimestampTrunc", "DateTrunc", "Extract", "DateBin",
    "JustifyDays", "JustifyHours", "JustifyInterval", "DateAdd", "DateSub", "DateDiff", "TsOrDsAdd",
    "TimestampAdd", "TimestampSub", "Date", "ToChar", "AtTimeZone",
    # conditionals and casts
    "Coalesce", "Nullif", "Case", "If", "Cast", "TryCast",
    # window functions
    "RowNumber", "Rank", "DenseRank", "PercentRank", "CumeDist", "Ntile", "Lag", "Lead", "FirstValue",
    "LastValue", "NthValue",
    # array literals and sizes
    "Array", "ArraySize",
})
ALLOWED_NAMED = frozenset({
    "every", "age", "make_date", "make_time", "make_timestamp", "make_interval", "date_part", "isfinite",
    "num_nulls", "num_nonnulls", "scale", "trim_scale", "gcd", "lcm", "div", "octet_length", "char_length",
    "btrim", "regexp_count", "regexp_substr", "array_to_string", "cardinality", "to_char", "timezone",
    "justify_days", "justify_hours", "justify_interval", "bool_and", "bool_or", "string_agg", "median",
    "log10", "ceiling", "power", "random", "strpos", "initcap", "length", "concat_ws",
})
ALLOWED_TYPES = frozenset({
    "INT", "SMALLINT", "BIGINT", "TINYINT", "DECIMAL", "DOUBLE", "FLOAT", "REAL", "TEXT", "VARCHAR", "CHAR",
    "NCHAR", "NVARCHAR", "BPCHAR", "DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMPLTZ", "TIME", "TIMETZ",
    "INTERVAL", "BOOLEAN", "MONEY",
})


@dataclass(frozen=True)
class GuardedQuery:
    sql: str                     # what runs: the re-rendered, limited query
    tables: tuple[str, ...]      # schema.table names it reads


@dataclass
class GuardedResult:
    frame: pd.DataFrame
    truncated: bool              # more rows exist than the row limit
    sql: str
    seconds: float
    note: str = ""               # what was cut for size, in a sentence; empty when nothing was


class SqlGuard:
    def __init__(self, db: Database, tables: Tables, *, reader: str = DEFAULT_READER,
                 row_limit: int = ROW_LIMIT, timeout_ms: int = STATEMENT_TIMEOUT_MS,
                 value_bytes: int = VALUE_BYTES, result_bytes: int = RESULT_BYTES):
        self.db, self.reader, self.row_limit, self.timeout_ms = db, reader, row_limit, timeout_ms
        self.value_bytes, self.result_bytes = value_bytes, result_bytes
        self.allowed = {(schema.lower(), table.lower()) for schema, table in assistant_tables(tables)}
        by_name: dict[str, list[str]] = {}
        for schema, table in sorted(self.allowed):
            by_name.setdefault(table, []).append(schema)
        self._schema_of = {t: s[0] for t, s in by_name.items() if len(s) == 1}
        self._may_limit_temp_files: bool | None = None

    @property
    def allowed_tables(self) -> list[str]:
        return [f"{s}.{t}" for s, t in sorted(self.allowed)]

    # -- the parser ------------------------------------------------------------------------

    def check(self, sql: str) -> GuardedQuery:
        """Accept and rewrite `sql`, or raise ValidationError saying why not."""
        if not sql or not sql.strip():
            raise ValidationError("Write a SELECT query after /sql.")
        if len(sql) > MAX_SQL_LENGTH:
            raise ValidationError(f"The query is {len(sql):,} characters long; the limit is {MAX_SQL_LENGTH:,}.")
        if "\x00" in sql:
            raise ValidationError("The query contains a NUL character.")
        try:
            statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
        except (ParseError, SqlglotError) as exc:
            errors = getattr(exc, "errors", None) or [{}]
            where = f" near line {errors[0].get('line')}, column {errors[0].get('col')}" if errors[0].get("line") else ""
            raise ValidationError(f"The query could not be read as PostgreSQL{where}.") from None
        if not statements:
            raise ValidationError("Write a SELECT query after /sql.")
        if len(statements) != 1:
            raise ValidationError(f"Exactly one statement is allowed; this has {len(statements)}.")
        tree = normalize_identifiers(statements[0], dialect="postgres")
        if not isinstance(tree, exp.Query) or isinstance(tree, exp.Values):
            raise ValidationError(f"Only SELECT queries are allowed, not {tree.key.upper()}.")
        self._refuse_writes(tree)
        tables = self._qualify_tables(tree)
        self._refuse_functions(tree)
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
            if isinstance(node, OPERATORS):       # AND, OR, ~, ->, @> ... sqlglot models as functions
                continue
            named = isinstance(node, exp.Anonymous)
            name = node.name.lower() if named else type(node).__name__
            shown = name if named else node.sql_name().lower()
            if isinstance(node.parent, exp.Dot):
                raise ValidationError(f"Schema-qualified functions ({node.parent.sql(dialect='postgres')}) are not "
                                      "allowed in assistant queries.")
            if (name not in ALLOWED_NAMED) if named else (name not in ALLOWED_FUNCTIONS):
                raise ValidationError(f"The function {shown}() is not allowed in assistant queries (they may use "
                                      "aggregates, maths, text, date and time functions, casts and window functions).")
            if isinstance(node, (exp.Cast, exp.TryCast)):
                target = node.to.this if isinstance(node.to, exp.DataType) else None
                kind = target.name if isinstance(target, exp.DataType.Type) else "USERDEFINED"
                if kind not in ALLOWED_TYPES:
                    raise ValidationError(f"Casting to {node.to.sql(dialect='postgres')} is not allowed in assistant "
                                          "queries; use numbers, text, dates, times, intervals or booleans.")

    def _qualify_tables(self, tree: exp.Expression) -> tuple[str, ...]:
        """Every table the query reads must be one the reader may read; unqualified names get their
        schema. A name is a CTE only where PostgreSQL would resolve it to one (its own scope)."""
        try:
            scopes = traverse_scope(tree)
        except (SqlglotError, RecursionError):
            raise ValidationError("The query's structure could not be checked; write it more simply.") from None
        ctes, real = set(), []
        for scope in scopes:
            for table in scope.tables:
                if not table.db and not table.catalog and table.name in scope.cte_sources:
                    ctes.add(id(table))
                else:
                    real.append(table)
        every = list(tree.find_all(exp.Table))
        if {id(t) for t in every} != ctes | {id(t) for t in real}:
            raise ValidationError("The query's structure could not be checked; write it more simply.")
        seen = []
        for table in real:
            name, schema = table.name.lower(), table.db.lower()
            if not name or not isinstance(table.this, exp.Identifier):
                raise ValidationError("Table functions are not allowed; name the tables to read.")
            if table.catalog:
                raise ValidationError(f"{table.sql(dialect='postgres')} names another database or catalog; only "
                                      "the app's tables may be read.")
            if not schema:
                schema = self._schema_of.get(name, "")
                if not schema:
                    raise ValidationError(f"'{table.name}' is not one of the tables the assistant may read "
                                          f"({', '.join(self.allowed_tables)}).")
                table.set("db", exp.to_identifier(schema))
            if (schema, name) not in self.allowed:
                raise ValidationError(f"'{schema}.{name}' is not one of the tables the assistant may read.")
            seen.append(f"{schema}.{name}")
        if not seen:
            raise ValidationError("The query reads no table of this app.")
        return tuple(dict.fromkeys(seen))

    def _limit(self, tree: exp.Query) -> exp.Query:
        """At most `row_limit` rows. When the app imposes the limit it asks for one row more, so
        the person can be told the result was cut; a smaller LIMIT of their own is kept."""
        limit = tree.args.get("limit")
        if limit is not None:
            value = limit.expression
            if not (isinstance(value, exp.Literal) and value.is_int):
                raise ValidationError("LIMIT must be a whole number.")
            if int(value.this) <= self.row_limit:
                return tree
        return tree.limit(self.row_limit + 1, copy=True)

    # -- running ---------------------------------------------------------------------------

    def run(self, sql: str) -> GuardedResult:
        """Check, then run as the reader role, read only, within the limits."""
        guarded = self.check(sql)
        started = time.perf_counter()
        try:
            with self.db.isolated("assistant_sql") as conn:
                self._enter_reader(conn)
                with conn.cursor() as cursor:
                    cursor.execute(f"SELECT * FROM ({guarded.sql}) AS result LIMIT 0")
                    names = [c.name for c in cursor.description]
                rows, oversized, cut = self._fetch(conn, guarded.sql, len(names))
        except AppError:
            raise
        except Exception as exc:  # the person's query failed: say why in PostgreSQL's words
            raise classify_user_query(exc) from exc
        frame = to_frame(rows, names)
        truncated = len(frame) > self.row_limit
        return GuardedResult(frame.head(self.row_limit), truncated, guarded.sql, time.perf_counter() - started,
                             note=self._note(len(frame), oversized, cut))

    def _enter_reader(self, conn) -> None:
        """Limits first (the app's role may set them; the reader may not lift the one on temporary
        files), then the reader's role for the rest of the transaction."""
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SELECT set_config('statement_timeout', %s, true), set_config('work_mem', %s, true)",
                     (str(self.timeout_ms), WORK_MEM))
        if self._may_limit_temp_files is None:
            self._may_limit_temp_files = bool(conn.execute(
                "SELECT has_parameter_privilege('temp_file_limit', 'SET')").fetchone()[0])
        if self._may_limit_temp_files:
            conn.execute("SELECT set_config('temp_file_limit', %s, true)", (TEMP_FILE_LIMIT,))
        try:
            conn.execute(f"SET LOCAL ROLE {quote(self.reader)}")
        except Exception as exc:
            raise AppError(f"The assistant's read-only database role '{self.reader}' is missing or the app may not "
                           "use it, so no query was run. An administrator runs: python -m data.setup schema "
                           "--grant-to <the app's role>.", category=Category.CONFIGURATION, detail=str(exc)) from exc

    def _fetch(self, conn, sql: str, width: int) -> tuple[list[tuple], int, bool]:
        """The rows, each value over `value_bytes` left empty, stopping once the values add up to
        `result_bytes`; and how many values were left empty, and whether rows were cut."""
        columns = [f"c{i}" for i in range(width)]
        size = [f"octet_length(r.{c}::text)" for c in columns]
        capped = ", ".join(f"CASE WHEN {s} > {self.value_bytes} THEN NULL ELSE r.{c} END"
                           for c, s in zip(columns, size))
        oversized = " + ".join(f"({s} > {self.value_bytes})::int" for s in size) or "0"
        total = " + ".join(f"coalesce(least({s}, {self.value_bytes}), 0)" for s in size) or "0"
        wrapped = (f"SELECT {capped}{', ' if capped else ''}coalesce({oversized}, 0), {total} "
                   f"FROM ({sql}) AS r({', '.join(columns)})")
        rows, used, left_empty = [], 0, 0
        with conn.cursor(name="assistant_result") as cursor:
            cursor.execute(wrapped)
            while batch := cursor.fetchmany(FETCH_BATCH):
                for row in batch:
                    used += row[-1]
                    if used > self.result_bytes:
                        return rows, left_empty, True
                    left_empty += row[-2]
                    rows.append(row[:-2])
        return rows, left_empty, False

    def _note(self, rows: int, oversized: int, cut: bool) -> str:
        parts = []
        if cut:
            parts.append(f"cut after {rows:,} rows to stay under {self.result_bytes / 1e6:.0f} MB")
        if oversized:
            parts.append(f"{oversized:,} value{'s' if oversized != 1 else ''} over {self.value_bytes / 1000:.0f} KB "
                         "left empty")
        return "; ".join(parts)
