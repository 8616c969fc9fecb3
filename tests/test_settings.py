"""Settings: which environments start the app, and what people are told when one cannot."""
from __future__ import annotations

import pytest

from data import settings as settings_module
from data.settings import EMBEDDED, LAKEBASE, PASSWORD, VARIABLES, SettingsError, load_settings

LAKEBASE_ENV = {"PGHOST": "instance-1.database.cloud.databricks.com", "PGUSER": "3f1c9a52-sp",
                "PGDATABASE": "databricks_postgres", "PGPORT": "5432", "PGSSLMODE": "require",
                "DATABRICKS_HOST": "https://example.cloud.databricks.com", "DATABRICKS_CLIENT_ID": "3f1c9a52-sp",
                "DATABRICKS_CLIENT_SECRET": "dose-secret-value"}


def problems(env: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return caught.value.problems


def test_nothing_configured_means_embedded():
    settings = load_settings({})
    assert settings.mode == EMBEDDED
    assert settings.app_port == 8000 and settings.app_address == "0.0.0.0"
    assert settings.pool_size == 5 and settings.max_overflow == 15 and settings.pool_recycle == 2700
    assert settings.mode_label == "Embedded PostgreSQL"


def test_databricks_apps_provisioned_environment():
    settings = load_settings({**LAKEBASE_ENV, "LAKEBASE_INSTANCE_NAME": "marketplace-db", "DATABRICKS_APP_PORT": "8080"})
    assert settings.mode == LAKEBASE and settings.lakebase_instance == "marketplace-db"
    assert settings.mode_label == "Lakebase Provisioned"
    assert settings.pg_sslmode == "require" and settings.app_port == 8080


def test_autoscaling_endpoint_without_pghost_is_allowed():
    env = {k: v for k, v in LAKEBASE_ENV.items() if k not in ("PGHOST", "PGUSER")}
    settings = load_settings({**env, "PGENDPOINT": "projects/p/branches/production/endpoints/primary"})
    assert settings.mode_label == "Lakebase Autoscaling" and settings.pg_host is None


def test_password_mode():
    settings = load_settings({"PGHOST": "db.internal", "PGUSER": "app", "PGPASSWORD": "hunter2-long"})
    assert settings.mode == PASSWORD and settings.pg_sslmode == "prefer"


@pytest.mark.parametrize("env, expected", [
    ({"PGHOST": "db.internal"}, ["PGHOST is set but there are no credentials"]),
    ({"PGPASSWORD": "pw-value-123"}, ["PGHOST is required with PGPASSWORD", "PGUSER is required with PGPASSWORD"]),
    ({**LAKEBASE_ENV, "LAKEBASE_INSTANCE_NAME": "db", "PGENDPOINT": "projects/p/branches/b/endpoints/e"},
     ["LAKEBASE_INSTANCE_NAME and PGENDPOINT are all set"]),
    ({**LAKEBASE_ENV, "LAKEBASE_INSTANCE_NAME": "db", "PGPASSWORD": "pw-value-123"},
     ["PGPASSWORD and LAKEBASE_INSTANCE_NAME are all set"]),
    ({"LAKEBASE_INSTANCE_NAME": "db"},
     ["DATABRICKS_HOST (or DATABRICKS_CONFIG_PROFILE) is required with LAKEBASE_INSTANCE_NAME",
      "Databricks credentials are required with LAKEBASE_INSTANCE_NAME"]),
    ({"PGENDPOINT": "projects/p/branches/b/endpoints/e", "DATABRICKS_HOST": "https://x", "DATABRICKS_CLIENT_ID": "id"},
     ["DATABRICKS_CLIENT_SECRET is required"]),
    ({"DATABRICKS_APP_PORT": "eighty"}, ["DATABRICKS_APP_PORT='eighty' is not a whole number"]),
    ({"DATABRICKS_APP_PORT": "70000"}, ["DATABRICKS_APP_PORT=70000 is outside 1..65535"]),
    ({"DB_POOL_SIZE": "0"}, ["DB_POOL_SIZE=0 is outside 1..100"]),
    ({"PGSSLMODE": "sometimes"}, ["PGSSLMODE='sometimes' is not one of"]),
    ({"LOG_LEVEL": "chatty"}, ["LOG_LEVEL='chatty' is not one of"]),
    ({"RETAIL_SCHEMA": "x" * 64}, ["RETAIL_SCHEMA="]),
    ({"DEMO_SCALE": "-1"}, ["DEMO_SCALE=-1 is outside"]),
    ({"APP_PROCESSES": "many"}, ["APP_PROCESSES='many' is not auto or a whole number from 1 to 16"]),
    ({"APP_PROCESSES": "0"}, ["APP_PROCESSES='0' is not auto"]),
])
def test_each_bad_environment_is_named(env, expected):
    found = problems(env)
    for text in expected:
        assert any(text in p for p in found), (text, found)


def test_app_processes_is_auto_or_a_count():
    assert load_settings({}).processes == "auto" and load_settings({"APP_PROCESSES": "3"}).processes == 3
    assert load_settings({"APP_PROCESSES": "AUTO"}).processes == "auto"


def test_every_problem_is_reported_at_once():
    found = problems({"PGPASSWORD": "pw-value-123", "DATABRICKS_APP_PORT": "x", "DB_MAX_OVERFLOW": "-3"})
    assert len(found) == 4
    message = str(SettingsError(found))
    assert message.startswith("Configuration problems:") and message.count("\n  - ") == 4


def test_redacted_settings_hide_the_password():
    settings = load_settings({"PGHOST": "db.internal", "PGUSER": "app", "PGPASSWORD": "hunter2-long"})
    shown = settings.redacted()
    assert shown["pg_password"] == "(set)"
    assert "hunter2-long" not in repr(shown)


def test_force_embedded_ignores_database_variables():
    settings = load_settings({"PGHOST": "db.internal"}, force_embedded=True)
    assert settings.mode == EMBEDDED and settings.pg_host is None


def test_variable_names_are_unique_and_documented():
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    assert all(v.doc.endswith((".", ")")) for v in VARIABLES)


def test_the_readme_table_is_the_one_the_declarations_make():
    """README's configuration table is generated (python -m data.settings prints it)."""
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert settings_module.readme_table() in readme


def test_every_field_comes_from_one_declaration():
    from dataclasses import fields
    declared = {v.field for v in VARIABLES if v.field}
    assert {f.name for f in fields(settings_module.Settings)} == declared | {"mode"}
    assert len(declared) == len([v for v in VARIABLES if v.field]), "one variable per field"
