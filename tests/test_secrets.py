"""No secret reaches a log line, an endpoint or the page: static passwords, the workspace PAT
and every Lakebase token the app minted are looked for in all of them."""
from __future__ import annotations

import pytest

from .fake_workspace import PAT, FakeWorkspace
from .helpers import APP_ROLE, APP_ROLE_PASSWORD, ServedApp, isolated_env, session_document_text

pytestmark = pytest.mark.slow


def everything_the_app_shows(app: ServedApp) -> str:
    app.get("/health/ready")
    parts = [app.get(path).text for path in ("/", "/health", "/health/ready", "/metrics")]
    for workspace in ("marketplace", "system"):
        parts.append(session_document_text(app.url, {"workspace": workspace}))
    app.stop()
    parts.append(app.logs())
    return "\n".join(parts)


def test_password_mode_never_shows_the_password(tmp_path, pg, database_name):
    env = isolated_env(tmp_path, PGHOST="127.0.0.1", PGPORT=pg.port, PGUSER=APP_ROLE, PGPASSWORD=APP_ROLE_PASSWORD,
                       PGDATABASE=database_name, PGSSLMODE="disable", LOG_LEVEL="DEBUG")
    with ServedApp(env, tmp_path / "app.log") as app:
        app.wait_until_ready()
        shown = everything_the_app_shows(app)
    assert APP_ROLE_PASSWORD not in shown
    assert "(set)" in shown, "the System settings say a password is set without showing it"


def test_lakebase_mode_never_shows_the_pat_or_a_token(tmp_path, pg, database_name):
    with FakeWorkspace(admin_dsn=pg.admin_dsn(), role=APP_ROLE, user_name=APP_ROLE, token_ttl=4) as ws:
        env = isolated_env(tmp_path, **ws.env(), PGHOST="127.0.0.1", PGPORT=pg.port, PGDATABASE=database_name,
                           PGSSLMODE="disable", LAKEBASE_INSTANCE_NAME=ws.instance_name, DB_POOL_RECYCLE="1",
                           LOG_LEVEL="DEBUG")
        try:
            with ServedApp(env, tmp_path / "app.log") as app:
                app.wait_until_ready()
                import time
                time.sleep(4)                       # let at least one token rotate
                app.get("/health/ready")
                shown = everything_the_app_shows(app)
        finally:
            ws.set_role_password(APP_ROLE_PASSWORD)
        assert len(ws.tokens_issued) >= 2
        for secret in [PAT, *ws.tokens_issued]:
            assert secret not in shown
        assert "lakebase token minted" in shown, "the log records mints, without the token"
