"""The page: one Material template holding the workspaces, built per browser session."""
from __future__ import annotations

import panel as pn
import panel_material_ui as pmui

from data.health import Monitor

from .state import AppState, signed_in_user
from .system import SystemState, SystemView

TITLE = "Lakebase Panel"


def configure_panel(num_threads: int) -> None:
    """Process-wide Panel settings; call once before serving."""
    pn.extension("tabulator", notifications=True)
    pn.config.nthreads = num_threads or None
    pn.config.reconnect = True            # reconnect after a proxy drops the websocket
    pn.config.throttled = True            # sliders report when released, not on every pixel


def create_page(monitor: Monitor, session_count=None) -> pmui.Page:
    settings = monitor.backend.settings
    state = AppState(user=signed_in_user(pn.state.headers), connection=settings.mode_label)
    system = SystemView(SystemState(monitor, session_count=session_count))
    workspaces = pmui.Tabs(("System", system), dynamic=True, sizing_mode="stretch_width")
    header = pmui.Row(
        pmui.Chip(label=state.param.connection, icon="storage", color="default", variant="outlined",
                  sx={"color": "white", "borderColor": "rgba(255,255,255,0.6)"}),
        pmui.Chip(label=state.param.user, icon="person", color="default", variant="outlined",
                  sx={"color": "white", "borderColor": "rgba(255,255,255,0.6)"}),
        align="center")
    return pmui.Page(title=TITLE, header=[header], main=[workspaces])
