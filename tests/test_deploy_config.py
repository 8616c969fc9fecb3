"""The deployment files agree with the code: every variable app.yaml and the bundle pass is one
the settings read, every resource they take a value from exists, every bundle variable is used."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from data.settings import VARIABLES

REPO = Path(__file__).resolve().parent.parent
SETTINGS = {v.name for v in VARIABLES}
APP_YAML = yaml.safe_load((REPO / "app.yaml").read_text())
BUNDLE_TEXT = (REPO / "databricks.yml").read_text()
BUNDLE = yaml.safe_load(BUNDLE_TEXT)
APP = BUNDLE["resources"]["apps"]["lakebase_panel"]
RESOURCES = {r["name"] for r in APP["resources"]}


def test_both_start_the_app_with_serve_py():
    assert APP_YAML["command"] == APP["config"]["command"] == ["python", "serve.py"]


def test_every_env_name_is_one_the_settings_read():
    names = [e["name"] for e in APP_YAML["env"]] + [e["name"] for e in APP["config"]["env"]]
    assert [n for n in names if n not in SETTINGS] == []


def test_values_come_from_resources_the_bundle_declares():
    sources = [e["valueFrom"] for e in APP_YAML["env"] if "valueFrom" in e]
    sources += [e["value_from"] for e in APP["config"]["env"] if "value_from" in e]
    assert sources and [s for s in sources if s not in RESOURCES] == []


def test_app_yaml_and_the_bundle_pass_the_same_resources():
    assert {e["name"]: e.get("valueFrom") for e in APP_YAML["env"] if "valueFrom" in e} == \
        {e["name"]: e.get("value_from") for e in APP["config"]["env"] if "value_from" in e}


def test_every_bundle_variable_is_used_and_every_use_is_declared():
    declared = set(BUNDLE["variables"])
    used = set(re.findall(r"\$\{var\.([a-z_]+)\}", BUNDLE_TEXT))
    assert declared - used == set() and used - declared == set()
    for target in BUNDLE["targets"].values():
        assert set(target.get("variables", {})) <= declared


def test_the_assistant_scopes_match_what_it_calls_as_the_user():
    assert {"dashboards.genie", "serving.serving-endpoints"} <= set(APP["user_api_scopes"])
    assert any(e["name"] == "ASSISTANT_AS_USER" and e["value"] == "true" for e in APP["config"]["env"])
