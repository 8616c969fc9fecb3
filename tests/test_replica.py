"""Reads that may be a moment stale go to a read-only replica: a real streaming standby made from
the embedded server with pg_basebackup. When the replica falls behind or goes away, reads go to the
primary and the app says so; when it is back, they return to it."""
from __future__ import annotations

import time

import psycopg
import pytest

from data.marketplace import Marketplace
from data.replica import ReadRouter

from .conftest import APP_ROLE, APP_ROLE_PASSWORD, app_role_database
from .helpers import ServedApp, isolated_env

IN_RECOVERY = "SELECT pg_is_in_recovery()"


@pytest.fixture(scope="module")
def standby(pg, tmp_path_factory):
    server = pg.make_standby(tmp_path_factory.mktemp("standby") / "data").start()
    yield server
    server.destroy()


def on_standby(standby, database: str):
    """A database of the standby as the app's role sees it."""
    class Replica:
        port = standby.port
    return app_role_database(Replica, database)


def caught_up(standby, database: str, timeout: float = 10) -> None:
    """Wait until the standby has the database (made on the primary after the base backup)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(standby.admin_dsn(database)):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture
def router(pg, standby, database_name, db):
    caught_up(standby, database_name)
    replica = on_standby(standby, database_name)
    router = ReadRouter(db, replica, max_lag=0.5)
    yield router
    router.dispose()


def test_reads_go_to_the_replica_while_it_keeps_up(router, db, tables):
    status = router.check()
    assert status.in_use and status.lag_s is not None and status.lag_s <= 0.5
    assert router.scalar("where", IN_RECOVERY) is True
    assert db.scalar("where", IN_RECOVERY) is False, "writes and own-write reads stay on the primary"
    cities = Marketplace(router, tables).cities()
    assert cities == Marketplace(db, tables).cities()


def test_a_replica_that_falls_behind_hands_reads_to_the_primary_until_it_catches_up(router, db, tables, standby,
                                                                                    database_name):
    assert router.check().in_use
    with psycopg.connect(standby.admin_dsn(database_name), autocommit=True) as admin:
        admin.execute("SELECT pg_wal_replay_pause()")
        try:
            with db.transaction("write") as conn:
                conn.exec_driver_sql(f"UPDATE {tables.orders} SET notes = 'while the replica waits' "
                                     "WHERE order_id = 1")
            time.sleep(1.0)
            status = router.check()
            assert not status.in_use and status.lag_s > 0.5 and "behind (limit 0.5 s)" in status.reason
            assert router.scalar("where", IN_RECOVERY) is False
        finally:
            admin.execute("SELECT pg_wal_replay_resume()")
    deadline = time.monotonic() + 10
    while not router.check().in_use and time.monotonic() < deadline:
        time.sleep(0.1)
    assert router.status().in_use
    assert router.scalar("note", f"SELECT notes FROM {tables.orders} WHERE order_id = 1") == "while the replica waits"


def test_a_replica_that_goes_away_costs_a_reader_nothing(router, standby, tables):
    assert router.check().in_use
    standby.stop()
    try:
        assert router.scalar("where", IN_RECOVERY) is False, "the read ran on the primary at once"
        assert not router.status().in_use and "stopped answering" in router.status().reason
        assert "unreachable" in router.check().reason
    finally:
        standby.restart_on_same_port()
    deadline = time.monotonic() + 20
    while not router.check().in_use and time.monotonic() < deadline:
        time.sleep(0.2)
    assert router.scalar("where", IN_RECOVERY) is True


def test_the_app_reads_from_the_replica_and_system_says_so(pg, standby, database_name, tmp_path):
    caught_up(standby, database_name)
    env = isolated_env(tmp_path, PGHOST="127.0.0.1", PGPORT=pg.port, PGUSER=APP_ROLE, PGPASSWORD=APP_ROLE_PASSWORD,
                       PGDATABASE=database_name, PGSSLMODE="disable", PGHOST_READONLY="127.0.0.1",
                       PGPORT_READONLY=standby.port)
    with ServedApp(env, tmp_path / "app.log") as app:
        app.wait_until_ready()
        replica = app.get("/metrics").json()["replica"]
        assert replica["configured"] and replica["in_use"], replica
        app.stop()
    assert "read-only replica host=127.0.0.1 in_use=True" in app.logs()
