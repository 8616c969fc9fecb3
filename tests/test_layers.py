"""The layering rules (README, Architecture), checked on the source itself: `data/` imports neither the
UI nor `dashboard/` nor `server/`; `dashboard/` holds no SQL; `server/` holds no Panel views."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UI_PACKAGES = {"panel", "panel_material_ui", "bokeh", "holoviews", "hvplot", "param"}
VIEW_PACKAGES = {"panel", "panel_material_ui", "holoviews", "hvplot", "param", "dashboard"}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\S+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))\b",
                 re.IGNORECASE | re.DOTALL)


def modules(package: str):
    return sorted((REPO / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_data_layer_imports_neither_the_ui_nor_the_dashboard_nor_the_server():
    offenders = {str(p.relative_to(REPO)): imported(p) & (UI_PACKAGES | {"dashboard", "server"})
                 for p in modules("data")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_server_plumbing_holds_no_panel_views():
    offenders = {str(p.relative_to(REPO)): imported(p) & VIEW_PACKAGES for p in modules("server")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_views_do_not_reach_into_the_server_plumbing():
    offenders = {str(p.relative_to(REPO)): imported(p) & {"server"} for p in modules("dashboard")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_dashboard_contains_no_sql():
    found = []
    for path in modules("dashboard"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == []
