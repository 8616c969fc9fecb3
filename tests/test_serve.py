"""`python serve.py` as people run it: embedded default, restarts, shutdown, bad configuration,
and the health endpoints while the database goes away and comes back."""
from __future__ import annotations

import signal
import subprocess
import sys
import uuid

import psycopg
import pytest
from psycopg import sql

from data.embedded import EmbeddedPostgres

from .helpers import REPO, ServedApp, free_port, isolated_env

pytestmark = pytest.mark.slow


def embedded_dsn(data_dir) -> str:
    port = EmbeddedPostgres(data_dir).running_port()
    return f"host={data_dir} port={port} user=postgres dbname=databricks_postgres"


def test_embedded_first_run_later_run_and_shutdown(tmp_path):
    data_dir = tmp_path / "pgdata"
    env = isolated_env(tmp_path, EMBEDDED_DATA_DIR=data_dir)
    with ServedApp(env, tmp_path / "first.log") as app:
        app.wait_until_ready(timeout=120)
        page = app.get("/")
        assert page.status_code == 200 and "Lakebase Panel" in page.text
        with psycopg.connect(embedded_dsn(data_dir), autocommit=True) as conn:
            conn.execute("UPDATE retail360.orders SET notes = 'survives a restart' WHERE order_id = 1")
        took = app.stop(signal.SIGTERM)
        logs = app.logs()
    assert took < 15, f"shutdown took {took:.1f} s"
    assert "Loading demo data" in logs and str(data_dir) in logs
    assert EmbeddedPostgres(data_dir).running_port() is None, "the embedded server stopped with the app"

    with ServedApp(env, tmp_path / "second.log") as app:
        app.wait_until_ready(timeout=60)
        with psycopg.connect(embedded_dsn(data_dir)) as conn:
            notes = conn.execute("SELECT notes FROM retail360.orders WHERE order_id = 1").fetchone()[0]
        assert notes == "survives a restart"
        assert "Loading demo data" not in app.logs()
        assert app.stop(signal.SIGINT) < 15


def test_reset_option_regenerates_the_demo_data(tmp_path):
    data_dir = tmp_path / "pgdata"
    env = isolated_env(tmp_path, EMBEDDED_DATA_DIR=data_dir, DEMO_SCALE="0.1")
    with ServedApp(env, tmp_path / "first.log") as app:
        app.wait_until_ready()
        with psycopg.connect(embedded_dsn(data_dir), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM retail360.orders").fetchone()[0] == 500
            conn.execute("UPDATE retail360.orders SET notes = 'edited' WHERE order_id = 1")
        app.stop()
    with ServedApp(env, tmp_path / "second.log", args=("--reset-demo-data",)) as app:
        app.wait_until_ready()
        with psycopg.connect(embedded_dsn(data_dir)) as conn:
            assert conn.execute("SELECT notes FROM retail360.orders WHERE order_id = 1").fetchone()[0] == ""
        assert "Loading demo data" in app.logs()
        app.stop()


@pytest.mark.parametrize("env, named", [
    ({"PGHOST": "db.internal"}, ["PGHOST"]),
    ({"LAKEBASE_INSTANCE_NAME": "db", "PGENDPOINT": "projects/p/branches/b/endpoints/e"},
     ["LAKEBASE_INSTANCE_NAME", "PGENDPOINT", "DATABRICKS_HOST"]),
    ({"DATABRICKS_APP_PORT": "http"}, ["DATABRICKS_APP_PORT"]),
])
def test_configuration_errors_stop_before_anything_starts(tmp_path, env, named):
    port = free_port()
    result = subprocess.run([sys.executable, str(REPO / "serve.py")], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env=isolated_env(tmp_path, EMBEDDED_DATA_DIR=tmp_path / "never",
                                                         **{"DATABRICKS_APP_PORT": str(port), **env}))
    assert result.returncode == 2
    assert result.stderr.startswith("Configuration problems:")
    for name in named:
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "never").exists(), "nothing was started or created"


@pytest.fixture
def own_postgres(tmp_path):
    """A server of our own, so the test can stop and restart it under a running app."""
    server = EmbeddedPostgres(tmp_path / "own-pg", durable=False).start()
    role, password, database = "own_app", "own-app-password-9d1", f"own_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(server.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(role)))
    yield server, {"PGHOST": "127.0.0.1", "PGPORT": str(server.port), "PGUSER": role, "PGPASSWORD": password,
                   "PGDATABASE": database, "PGSSLMODE": "disable", "DB_CONNECT_TIMEOUT": "2"}
    server.destroy()


def test_ready_follows_the_database_without_restarting_the_app(tmp_path, own_postgres):
    server, env = own_postgres
    with ServedApp(isolated_env(tmp_path, **env), tmp_path / "app.log") as app:
        app.wait_until_ready()
        assert app.get("/health").json() == {"status": "alive"}
        server.stop()
        down = app.get("/health/ready")
        assert down.status_code == 503
        assert down.json()["status"] == "unavailable" and down.json()["category"] == "connection"
        assert app.get("/health").status_code == 200, "alive even while the database is down"
        metrics = app.get("/metrics").json()
        assert metrics["database"]["state"] == "down" and metrics["errors"]["connection"] >= 1
        server.restart_on_same_port()
        assert app.get("/health/ready").status_code == 200
        assert app.get("/metrics").json()["database"]["state"] == "up"
        app.stop()


@pytest.mark.parametrize("processes", [1, 2])
def test_metrics_report_the_system_figures(tmp_path, own_postgres, processes):
    _, env = own_postgres
    with ServedApp(isolated_env(tmp_path, APP_PROCESSES=processes, **env), tmp_path / "app.log") as app:
        app.wait_until_ready()
        app.get("/")
        metrics = app.get("/metrics").json()
        shape = {"database", "pool", "replica", "token", "queries", "cache", "errors", "process"}
        assert set(metrics) == (shape if processes == 1 else shape | {"workers"})
        assert metrics["replica"] == {"configured": False, "in_use": False, "lag_s": None,
                                      "reason": "no replica configured", "checked_at": None}
        assert metrics["database"]["mode"] == "password" and metrics["database"]["version"].startswith("18")
        # The pool settings are per process; several processes report their sum.
        assert metrics["pool"]["size"] == 5 * processes and metrics["pool"]["max_overflow"] == 15 * processes
        assert {q["query"] for q in metrics["queries"]} >= {"health_check"}
        assert all(q["p95_ms"] >= q["p50_ms"] >= 0 for q in metrics["queries"])
        assert set(metrics["errors"]) == {"configuration", "connection", "authentication", "timeout", "validation",
                                          "conflict", "permission", "upstream"}
        if processes == 1:
            assert "create_schema" in {q["query"] for q in metrics["queries"]}
        else:
            assert len(metrics["workers"]) == 2 and all(set(w) == shape for w in metrics["workers"])
            assert metrics["process"]["processes"] == 2 and metrics["process"]["sessions"] == 1
        app.stop()


def test_panel_num_threads_in_the_environment_does_not_stop_the_start(tmp_path):
    """Panel starts its thread pool from PANEL_NUM_THREADS on import (app.yaml sets it)."""
    env = {**isolated_env(tmp_path), "PANEL_NUM_THREADS": "4"}
    done = subprocess.run([sys.executable, "-c", "from dashboard.app import configure_panel; configure_panel(4); "
                           "import panel as pn; print(pn.state._thread_pool._max_workers)"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "4"
