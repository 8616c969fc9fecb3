"""Lakebase OAuth tokens, for real: the SDK mints them from the fake workspace, which sets the
database role's password to each new token, so a stale or revoked token really fails."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import sql

from data.backend import open_backend
from data.credentials import MAX_TOKEN_USE, LakebaseTokens, Token
from data.errors import AppError, Category
from data.metrics import metrics
from data.settings import load_settings

from .fake_workspace import FakeWorkspace


@pytest.fixture
def lakebase_role(pg, database_name):
    """A login role standing in for the app's service principal; its password is the current token."""
    role = f"sp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'not-yet-minted'").format(sql.Identifier(role)))
    yield role
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database_name)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def workspace(pg, lakebase_role, clean_env):
    with FakeWorkspace(admin_dsn=pg.admin_dsn(), role=lakebase_role, user_name=lakebase_role) as ws:
        for key, value in ws.env().items():
            clean_env.setenv(key, value)
        yield ws


def lakebase_backend(pg, database_name, ws, **env):
    settings = load_settings({**ws.env(), "PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGDATABASE": database_name,
                              "PGSSLMODE": "disable", **env})
    return open_backend(settings)


def select_one(backend) -> int:
    return backend.db.scalar("select_one", "SELECT 1")


def test_provisioned_tokens_rotate_across_200_queries(pg, database_name, workspace, lakebase_role):
    workspace.token_ttl = 3.0                       # re-minted every 2.5 s
    backend = lakebase_backend(pg, database_name, workspace, PGUSER=lakebase_role,
                               LAKEBASE_INSTANCE_NAME=workspace.instance_name, DB_POOL_RECYCLE="1")
    started = time.monotonic()
    results = []
    for _ in range(200):
        results.append(select_one(backend))
        time.sleep(0.045)
    elapsed = time.monotonic() - started
    backend.close()

    assert results == [1] * 200
    minted = len(workspace.calls_to("/api/2.0/database/credentials", "POST"))
    assert minted >= 4, "at least three rotations after the first token"
    assert minted <= elapsed / 2.5 + 2, "tokens are cached, not minted per connection"
    assert backend.db.connections_opened > minted, "connections were recycled while tokens were reused"
    # The first token no longer opens connections: its password was rotated away.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=pg.port, dbname=database_name, user=lakebase_role,
                        password=workspace.tokens_issued[0], connect_timeout=3)


def test_autoscaling_endpoint_resolves_host_and_user(pg, database_name, workspace):
    backend = lakebase_backend(pg, database_name, workspace, PGENDPOINT=workspace.endpoint_name, PGHOST="")
    assert backend.host == "127.0.0.1" and backend.user == workspace.user_name
    assert select_one(backend) == 1
    status = backend.credentials.status()
    assert status["mode"] == "lakebase" and status["mints"] == 1
    assert 3500 < status["expires_in_s"] <= 3600 and status["refresh_in_s"] <= 3000
    assert len(workspace.calls_to("/api/2.0/postgres/credentials", "POST")) == 1
    assert workspace.calls_to("/api/2.0/postgres/projects/")[0].method == "GET"
    backend.close()


def test_revoked_token_is_replaced_on_the_next_connection(pg, database_name, workspace, lakebase_role):
    backend = lakebase_backend(pg, database_name, workspace, PGUSER=lakebase_role,
                               LAKEBASE_INSTANCE_NAME=workspace.instance_name)
    assert select_one(backend) == 1
    workspace.revoke()                 # the cached token stops working
    backend.db.dispose()               # and no pooled connection survives to hide it
    assert select_one(backend) == 1
    assert len(workspace.calls_to("/api/2.0/database/credentials", "POST")) == 2
    backend.close()


def test_workspace_outage_while_minting_is_an_upstream_error_then_recovers(pg, database_name, workspace, lakebase_role):
    backend = lakebase_backend(pg, database_name, workspace, PGUSER=lakebase_role,
                               LAKEBASE_INSTANCE_NAME=workspace.instance_name)
    before = metrics.errors()["upstream"]
    workspace.fail("/api/2.0/database/credentials", 500, times=1)
    with pytest.raises(AppError) as caught:
        select_one(backend)
    assert caught.value.category is Category.UPSTREAM
    assert metrics.errors()["upstream"] > before
    assert backend.credentials.status()["mint_failures"] >= 1
    assert select_one(backend) == 1    # the next request mints normally
    backend.close()


def test_unknown_instance_fails_at_start_with_a_configuration_error(pg, database_name, workspace, lakebase_role):
    with pytest.raises(AppError) as caught:
        lakebase_backend(pg, database_name, workspace, PGHOST="", PGUSER=lakebase_role,
                         LAKEBASE_INSTANCE_NAME="no-such-instance")
    assert caught.value.category is Category.CONFIGURATION


class FakeClock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def minting(lifetime: float, clock: FakeClock):
    issued = []

    def mint():
        issued.append(f"token-{len(issued)}")
        return issued[-1], datetime.fromtimestamp(clock.now + lifetime, timezone.utc)
    return mint, issued


@pytest.mark.parametrize("lifetime, refresh_after", [
    (3600, 3000),          # an hour-long token: 10 minutes before expiry
    (7200, MAX_TOKEN_USE), # a longer token is still never used past 50 minutes
    (12, 10),              # short test tokens keep a proportional margin
])
def test_token_is_reminted_before_it_expires(lifetime, refresh_after):
    clock = FakeClock()
    mint, issued = minting(lifetime, clock)
    tokens = LakebaseTokens(mint, kind="test", clock=clock)
    assert tokens.password() == "token-0"
    clock.now += refresh_after - 0.5
    assert tokens.password() == "token-0"
    clock.now += 1
    assert tokens.password() in ("token-0", "token-1"), "a token still valid is used while a new one is minted"
    deadline = time.monotonic() + 5
    while tokens.mints < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tokens.password() == "token-1"
    assert tokens.mints == 2


def test_token_refresh_point():
    token = Token("t", minted_at=0, expires_at=3600)
    assert token.refresh_at == 3000
    assert Token("t", minted_at=0, expires_at=(timedelta(hours=24)).total_seconds()).refresh_at == MAX_TOKEN_USE


def test_a_credential_without_a_token_is_not_cached(pg, database_name, workspace, lakebase_role):
    backend = lakebase_backend(pg, database_name, workspace, PGUSER=lakebase_role,
                               LAKEBASE_INSTANCE_NAME=workspace.instance_name)
    workspace.fail("/api/2.0/database/credentials", 200, times=1)      # 200, but no token in the body
    with pytest.raises(AppError) as caught:
        select_one(backend)
    assert caught.value.category is Category.AUTHENTICATION and "without a database token" in caught.value.message
    assert select_one(backend) == 1, "the next connection asks again and works"
    assert backend.credentials.status()["mints"] == 1
    backend.close()


def test_a_refused_token_is_forgotten_even_when_the_new_one_is_refused_too(pg, database_name, workspace,
                                                                          lakebase_role):
    backend = lakebase_backend(pg, database_name, workspace, PGUSER=lakebase_role,
                               LAKEBASE_INSTANCE_NAME=workspace.instance_name)
    assert select_one(backend) == 1
    workspace.revoke()
    backend.db.dispose()
    issue = workspace.issue_token
    workspace.issue_token = lambda: (lambda token: (workspace.revoke(), token)[1])(issue())   # a token that fails
    with pytest.raises(AppError):
        select_one(backend)
    assert backend.credentials.status().get("age_s") is None, "no refused token stays cached"
    workspace.issue_token = issue
    assert select_one(backend) == 1
    backend.close()


def test_waiters_share_one_mint_and_each_waits_at_most_the_deadline():
    import threading
    from concurrent.futures import ThreadPoolExecutor

    release, calls = threading.Event(), []

    def hung_mint():
        calls.append(1)
        release.wait(10)
        return "late-token", datetime.now(timezone.utc) + timedelta(hours=1)

    tokens = LakebaseTokens(hung_mint, kind="test", deadline=0.5)
    started = time.monotonic()
    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(lambda _: _attempt(tokens), range(12)))
    waited = time.monotonic() - started
    assert outcomes == ["timeout"] * 12 and waited < 1.5, (outcomes, waited)
    assert len(calls) == 1, "twelve callers, one mint"
    release.set()
    deadline = time.monotonic() + 5
    while tokens.status()["minting"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert tokens.password() == "late-token" and len(calls) == 1, "the late token is used once it came"


def _attempt(tokens) -> str:
    try:
        return tokens.password()
    except AppError as exc:
        return exc.category.value


def test_a_failed_mint_fails_every_waiter_at_once_and_the_next_caller_tries_again():
    outcomes = iter([RuntimeError("workspace down"), ("fresh", datetime.now(timezone.utc) + timedelta(hours=1))])

    def mint():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    tokens = LakebaseTokens(mint, kind="test", deadline=5)
    with pytest.raises(RuntimeError):
        tokens.password()
    assert tokens.password() == "fresh" and tokens.status()["mint_failures"] == 1


def test_ready_answers_within_two_seconds_while_a_mint_hangs_or_fails(pg, database_name, workspace, lakebase_role,
                                                                    tmp_path):
    from .helpers import ServedApp, isolated_env
    env = isolated_env(tmp_path, **workspace.env(), PGHOST="127.0.0.1", PGPORT=pg.port, PGDATABASE=database_name,
                       PGSSLMODE="disable", PGUSER=lakebase_role, LAKEBASE_INSTANCE_NAME=workspace.instance_name,
                       APP_PROCESSES=1, DB_POOL_RECYCLE=1, DB_CONNECT_TIMEOUT=2)
    credentials = "/api/2.0/database/credentials"
    with ServedApp(env, tmp_path / "app.log") as app:
        app.wait_until_ready()
        workspace.revoke()                                   # new connections need a new token ...
        workspace.fail(credentials, 200, times=3, delay=25)  # ... and minting one hangs
        time.sleep(1.5)                                      # pooled connections are recycled
        for _ in range(4):
            asked = time.monotonic()
            answer = app.get("/health/ready", timeout=10)
            assert time.monotonic() - asked < 2.5 and answer.status_code == 503, answer.text
            assert answer.json()["reason"]
        workspace.heal()
        workspace.fail(credentials, 500, times=50)           # now the workspace fails outright
        for _ in range(3):
            asked = time.monotonic()
            answer = app.get("/health/ready", timeout=10)
            assert time.monotonic() - asked < 2.5 and answer.status_code == 503, answer.text
        workspace.heal()
        deadline = time.monotonic() + 30
        while app.get("/health/ready", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "ready again once the workspace answers"
            time.sleep(0.5)
        app.stop()


def test_the_fakes_token_check_accepts_every_unexpired_token_as_lakebase_does(pg, lakebase_role):
    """The RADIUS check the fault tests use for several processes and instances: a token issued
    earlier still logs in after a newer one is issued; an expired, a revoked or an unknown token,
    and a good token for another role, do not."""
    from .radius import TokenCheck, checked_by
    database = f"radius_{uuid.uuid4().hex[:6]}"
    pg.create_database(database)

    def logs_in(token: str, user: str = lakebase_role) -> bool:
        try:
            psycopg.connect(host="127.0.0.1", port=pg.port, dbname=database, user=user, password=token,
                            sslmode="disable", connect_timeout=5).close()
            return True
        except psycopg.OperationalError:
            return False

    with TokenCheck(lakebase_role) as check, checked_by(check, pg.admin_dsn(), database):
        check.issue("first", 30)
        check.issue("second", 30)
        check.issue("short", 0.5)
        assert logs_in("first") and logs_in("second")
        time.sleep(0.6)
        assert not logs_in("short"), "expired"
        assert not logs_in("never-issued")
        assert not logs_in("first", user="postgres"), "another role's login is not this check's"
        check.revoke_all()
        assert not logs_in("second"), "revoked"
    assert check.answers["accepted"] == 2
