"""Opening the database the settings describe, and getting it ready to serve.

`open_backend` is the only place that decides between the embedded PostgreSQL, a static
password and Lakebase tokens; everything above it sees a `Backend` with one `Database`.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field

from . import demo
from .credentials import NoPassword, StaticPassword, autoscaling_tokens, provisioned_tokens
from .database import Database
from .embedded import APP_ROLE, EmbeddedPostgres
from .errors import AppError
from .schema import ALL_DOMAINS, APP_OWNED_DOMAINS, create_schema, drop_schema, schema_sql, sql_file
from .settings import EMBEDDED, PASSWORD, Settings
from .replica import ReadRouter
from .tables import Tables
from .workspace import resolve_lakebase_target, workspace_client

log = logging.getLogger(__name__)


@dataclass
class Backend:
    settings: Settings
    db: Database
    tables: Tables
    credentials: object
    host: str
    user: str
    embedded: EmbeddedPostgres | None = None
    workspace: object | None = None
    background: list[threading.Thread] = field(default_factory=list)
    reads: ReadRouter | None = None     # where reads that may be a moment stale go (the replica, if any)

    def __post_init__(self) -> None:
        if self.reads is None:
            self.reads = ReadRouter(self.db, None)

    def close(self) -> None:
        self.db.dispose()
        self.reads.dispose()
        if self.embedded is not None:
            self.embedded.stop()


def open_backend(settings: Settings, *, database_overrides: dict | None = None, attach: bool = False) -> Backend:
    """`attach`: a worker process of the app uses the embedded server the first process started."""
    tables = Tables.from_settings(settings)
    overrides = database_overrides or {}
    if settings.mode == EMBEDDED:
        server = EmbeddedPostgres(settings.embedded_data_dir)
        if attach:
            server.attach()
        else:
            server.start().prepare_database(settings.pg_database, settings.assistant_reader_role,
                                            list(tables.schemas.values()))
        credentials = NoPassword()
        host, user = str(server.socket_dir), APP_ROLE
        db = Database.from_settings(settings, credentials, host=host, port=server.port, user=user, **overrides)
        return Backend(settings, db, tables, credentials, host, user, embedded=server)
    if settings.mode == PASSWORD:
        credentials = StaticPassword(settings.pg_password)
        db = Database.from_settings(settings, credentials, host=settings.pg_host, port=settings.pg_port,
                                    user=settings.pg_user, **overrides)
        return Backend(settings, db, tables, credentials, settings.pg_host, settings.pg_user,
                       reads=_reads(settings, db, credentials, settings.pg_host_readonly, settings.pg_user, overrides))
    w = workspace_client()
    target = resolve_lakebase_target(w, host=settings.pg_host, user=settings.pg_user,
                                     instance=settings.lakebase_instance, endpoint=settings.lakebase_endpoint)
    if settings.lakebase_endpoint:
        credentials = autoscaling_tokens(w, settings.lakebase_endpoint)
    else:
        credentials = provisioned_tokens(w, settings.lakebase_instance)
    db = Database.from_settings(settings, credentials, host=target.host, port=settings.pg_port,
                                user=target.user, **overrides)
    reads = _reads(settings, db, credentials, settings.pg_host_readonly or target.read_only_host, target.user,
                   overrides)
    return Backend(settings, db, tables, credentials, target.host, target.user, workspace=w, reads=reads)


def _reads(settings: Settings, db: Database, credentials, replica_host: str | None, user: str,
           overrides: dict) -> ReadRouter:
    """Reads on the replica at `replica_host` (same role and credentials), once it answers."""
    if not replica_host:
        return ReadRouter(db, None)
    replica = Database.from_settings(settings, credentials, host=replica_host, user=user,
                                     port=settings.pg_port_readonly or settings.pg_port, **overrides)
    reads = ReadRouter(db, replica, max_lag=settings.replica_max_lag)
    status = reads.check()
    log.info("read-only replica host=%s in_use=%s %s", replica_host, status.in_use, status.reason)
    return reads


def schema_fingerprint(tables: Tables) -> str:
    text = "".join(schema_sql(d, tables) for d in ALL_DOMAINS)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def prepare(backend: Backend, *, reset_demo: bool = False, progress: bool = True) -> None:
    """Create the schema; on the embedded default also load or refresh the demo data."""
    db, tables = backend.db, backend.tables
    if backend.settings.mode != EMBEDDED:
        try:
            create_schema(db, tables, APP_OWNED_DOMAINS, reader=backend.settings.assistant_reader_role)
        except AppError as exc:  # the System workspace reports missing tables; the app still starts
            log.warning("could not create the app-owned schema: %s (%s)", exc, exc.detail)
        return
    reader = backend.settings.assistant_reader_role
    create_schema(db, tables, ("app",), reader=reader)
    meta = demo.read_meta(db, tables)
    fingerprint = schema_fingerprint(tables)
    stale = "demo_loaded_at" in meta and meta.get("schema_fingerprint") != fingerprint
    if stale:
        log.warning("the embedded database was made by an older version of the app; regenerating demo data")
    if reset_demo or stale:
        drop_schema(db, tables, ALL_DOMAINS)
        meta = {}
    create_schema(db, tables, ALL_DOMAINS, reader=reader)
    if "demo_loaded_at" not in meta:
        demo.load_demo_data(db, tables, scale=backend.settings.demo_scale, progress=progress,
                            meta={"schema_fingerprint": fingerprint})
    else:
        demo.refresh_demo_data(db, tables)


def create_vector_index(db: Database, tables: Tables) -> None:
    """The pgvector HNSW index for similar products (idempotent; tens of seconds for 44,000 vectors)."""
    sql = sql_file("fashion_vector_index", "fashion", tables)
    with db.transaction("build_vector_index") as conn:
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        db.run_script(conn, sql)


def build_vector_index_in_background(backend: Backend) -> threading.Thread:
    """The HNSW index takes a while; build it while the app already serves (exact scans until then)."""
    def build() -> None:
        try:
            create_vector_index(backend.db, backend.tables)
            log.info("vector index ready")
        except AppError as exc:
            log.warning("vector index not built: %s (%s)", exc, exc.detail)

    thread = threading.Thread(target=build, name="vector-index", daemon=True)
    thread.start()
    backend.background.append(thread)
    return thread
