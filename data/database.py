"""The one SQLAlchemy engine per process, token-aware and instrumented.

Every physical connection gets its password from the credential provider at the moment it
is opened (`do_connect`), so a pool never holds on to an expired Lakebase token. Reads go
through `frame`/`rows`/`scalar`, which time each named query, retry once on a dropped
connection, and turn failures into `AppError`s; writes go through `transaction`.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Iterator, Mapping

import pandas as pd
import psycopg
from sqlalchemy import URL, Connection, create_engine, event, text
from sqlalchemy.engine import Engine

from .errors import AppError, Category, classify, is_transient_connection_error
from .metrics import Metrics, metrics as default_metrics
from .settings import EMBEDDED, Settings

log = logging.getLogger(__name__)


def database_url(settings: Settings, *, host: str, port: int, user: str, database: str) -> URL:
    query = {"application_name": settings.pg_appname}
    if settings.mode != EMBEDDED:
        query["sslmode"] = settings.pg_sslmode
    if host.startswith("/"):  # a Unix socket directory
        query["host"] = host
        return URL.create("postgresql+psycopg", username=user, port=port, database=database, query=query)
    return URL.create("postgresql+psycopg", username=user, host=host, port=port, database=database, query=query)


class Database:
    def __init__(self, url: URL, credentials, *, pool_size: int = 5, max_overflow: int = 15,
                 pool_timeout: float = 10, pool_recycle: int = 2700, connect_timeout: int = 5,
                 statement_timeout_ms: int = 30000, metrics: Metrics = default_metrics):
        self.credentials = credentials
        self.metrics = metrics
        self.statement_timeout_ms = statement_timeout_ms
        self.connections_opened = 0
        self._connect_timeout = connect_timeout
        self.engine: Engine = create_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout,
            pool_recycle=pool_recycle, pool_pre_ping=True, connect_args={"connect_timeout": connect_timeout})
        event.listen(self.engine, "do_connect", self._open_connection)
        event.listen(self.engine, "connect", self._prepare_connection)
        # Reads need no transaction: autocommit saves the BEGIN and ROLLBACK round trips.
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @classmethod
    def from_settings(cls, settings: Settings, credentials, *, host: str, port: int, user: str,
                      database: str | None = None, **overrides) -> "Database":
        url = database_url(settings, host=host, port=port, user=user, database=database or settings.pg_database)
        options = dict(pool_size=settings.pool_size, max_overflow=settings.max_overflow,
                       pool_timeout=settings.pool_timeout, pool_recycle=settings.pool_recycle,
                       connect_timeout=settings.connect_timeout,
                       statement_timeout_ms=settings.statement_timeout_ms)
        options.update(overrides)
        return cls(url, credentials, **options)

    # -- connection lifecycle -------------------------------------------------------------

    def _open_connection(self, dialect, conn_rec, cargs, cparams):
        """A new physical connection with the current password. A token the database refuses is
        forgotten at once; a renewable credential (Lakebase) is minted afresh and tried once more."""
        for attempt in (1, 2):
            password = self.credentials.password()
            if password:
                cparams["password"] = password
            try:
                connection = dialect.connect(*cargs, **cparams)
                break
            except psycopg.OperationalError as exc:
                if classify(exc).category is not Category.AUTHENTICATION:
                    raise
                self.credentials.invalidate(password)
                if attempt == 2 or not self.credentials.renewable:
                    raise
                log.warning("database refused the cached credential; minting a new one")
        self.connections_opened += 1
        return connection

    def _prepare_connection(self, dbapi_connection, conn_rec) -> None:
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        dbapi_connection.execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
        dbapi_connection.autocommit = autocommit

    def dispose(self) -> None:
        self.engine.dispose()

    def dedicated_connection(self):
        """A psycopg connection outside the pool (autocommit), with the same credentials: for LISTEN."""
        dialect = self.engine.dialect
        cargs, cparams = dialect.create_connect_args(self.engine.url)
        cparams.setdefault("connect_timeout", self._connect_timeout)
        connection = self._open_connection(dialect, None, list(cargs), cparams)
        connection.autocommit = True
        return connection

    # -- reads ----------------------------------------------------------------------------

    def _read(self, name: str, sql: str, params: Mapping[str, Any] | None, consume):
        attempts = 2
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                with self._reader.connect() as conn:
                    result = consume(conn.execute(text(sql), dict(params or {})))
                self.metrics.record_query(name, time.perf_counter() - started)
                return result
            except Exception as exc:
                self.metrics.record_query(name, time.perf_counter() - started, ok=False)
                if attempt < attempts and is_transient_connection_error(exc):
                    log.warning("query %s lost its connection; retrying once on a fresh one", name)
                    continue
                raise self._failure(name, exc) from exc
        raise AssertionError("unreachable")

    def frame(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Run a named read and return a DataFrame (NUMERIC columns as floats)."""
        def consume(result):
            return to_frame(result.fetchall(), list(result.keys()))
        return self._read(name, sql, params, consume)

    def rows(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        return self._read(name, sql, params, lambda result: [dict(r) for r in result.mappings()])

    def scalar(self, name: str, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._read(name, sql, params, lambda result: result.scalar())

    def stream(self, name: str, sql: str, params: Mapping[str, Any] | None = None, *,
               batch: int = 5000) -> Iterator[tuple]:
        """Rows of a large named read from a server-side cursor, `batch` at a time (never all in
        memory); failures become AppErrors, and the time to the last row is recorded."""
        started = time.perf_counter()
        try:
            with self.engine.connect().execution_options(stream_results=True, max_row_buffer=batch) as conn:
                result = conn.execute(text(sql), dict(params or {}))
                for partition in result.partitions(batch):
                    yield from partition
        except GeneratorExit:
            raise
        except Exception as exc:
            self.metrics.record_query(name, time.perf_counter() - started, ok=False)
            raise self._failure(name, exc) from exc
        self.metrics.record_query(name, time.perf_counter() - started)

    # -- writes ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self, name: str) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back on any exception."""
        started = time.perf_counter()
        try:
            with self.engine.begin() as conn:
                yield conn
        except Exception as exc:
            self.metrics.record_query(name, time.perf_counter() - started, ok=False)
            raise self._failure(name, exc) from exc
        self.metrics.record_query(name, time.perf_counter() - started)

    @contextmanager
    def read_only(self, name: str) -> Iterator[Connection]:
        """A read-only transaction (for reads that need a setting of their own): a replica can run it."""
        with self.transaction(name) as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn

    @contextmanager
    def isolated(self, name: str) -> Iterator[psycopg.Connection]:
        """One transaction on a connection that is closed afterwards, so nothing run in it (a role,
        a setting a function changed, a temporary object) reaches whoever checks out the next one.
        Yields the driver's connection; errors are the caller's to classify (timed here)."""
        started, ok = time.perf_counter(), False
        conn = self.engine.connect()
        try:
            with conn.begin():
                yield conn.connection.driver_connection
            ok = True
        finally:
            conn.invalidate()
            conn.close()
            self.metrics.record_query(name, time.perf_counter() - started, ok=ok)

    @staticmethod
    def run_script(conn: Connection, sql: str) -> None:
        """Several statements at once, passed to the driver untouched (no parameter parsing)."""
        conn.connection.driver_connection.execute(sql)

    def _failure(self, name: str, exc: Exception) -> AppError:
        error = classify(exc)
        self.metrics.record_error(error.category)
        log.warning("query %s failed category=%s detail=%s", name, error.category.value,
                    error.detail or error.message)
        return error

    # -- state ----------------------------------------------------------------------------

    def pool_status(self) -> dict:
        pool = self.engine.pool
        return {"size": pool.size(), "checked_out": pool.checkedout(), "checked_in": pool.checkedin(),
                "overflow": max(pool.overflow(), 0), "max_overflow": getattr(pool, "_max_overflow", None),
                "connections_opened": self.connections_opened}

    def server_version(self) -> str:
        return self.scalar("server_version", "SHOW server_version")


def to_frame(rows: list, columns: list[str]) -> pd.DataFrame:
    """Rows to a DataFrame, NUMERIC columns (Decimal) as floats."""
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for position in range(frame.shape[1]):        # by position: a query may repeat a column name
        series = frame.iloc[:, position]
        if series.dtype == object:
            sample = series.dropna()
            if len(sample) and isinstance(sample.iloc[0], Decimal):
                frame.isetitem(position, series.astype(float))
    return frame
