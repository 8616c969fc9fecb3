"""The page: one Material template holding the workspaces, built per browser session."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import panel as pn
import panel_material_ui as pmui

from data.assistant import Assistant, assistant_for_session
from data.catalog import Catalog
from data.changes import ChangeFeed
from data.health import Monitor
from data.marketplace import Marketplace
from data.orders import Orders

from .assistant import AssistantState, AssistantView
from .catalog import CatalogState, CatalogView
from .marketplace import MarketplaceState, MarketplaceView
from .orders import OrdersState, OrdersView
from .state import AppState, signed_in_user
from .system import SystemState, SystemView
from . import upstream_fixes
from .urls import sync_with_url
from .widgets import LazyTabs, notice

TITLE = "Lakebase Panel"
WORKSPACES = {"marketplace": "Marketplace", "orders": "Orders", "catalog": "Catalog", "assistant": "Assistant",
              "system": "System"}


@dataclass
class AppContext:
    """Process-wide services every session shares (one database, one set of caches)."""

    monitor: Monitor
    marketplace: Marketplace
    orders: Orders
    catalog: Catalog
    assistant: Assistant
    feed: ChangeFeed | None = None
    dashboard_links: tuple[str, str] | None = None
    session_count: Callable[[], int | None] = lambda: None


def configure_panel(num_threads: int) -> None:
    """Process-wide Panel settings; call once before serving."""
    pn.extension("tabulator", notifications=True)
    upstream_fixes.apply()
    wanted = num_threads or None
    # Panel reads PANEL_NUM_THREADS itself (as text) and starts its pool on import; setting the same
    # size again raises "Thread pool already running" (Databricks Apps sets the variable from app.yaml).
    current = int(pn.config.nthreads) if pn.config.nthreads not in (None, "") else None
    if current != wanted:
        pn.config.nthreads = wanted
    pn.config.reconnect = True            # reconnect after a proxy drops the websocket
    pn.config.throttled = True            # sliders report when released, not on every pixel


def create_page(context: AppContext) -> pmui.Page:
    settings = context.monitor.backend.settings
    app = AppState(user=signed_in_user(pn.state.headers), connection=settings.mode_label)
    app.param.workspace.objects = list(WORKSPACES)
    app.workspace = "marketplace"
    app.set_cities(context.marketplace.cities())
    sync_with_url(app, {"workspace": "workspace", "city": "city"}, app.notify)

    system = SystemState(context.monitor, session_count=context.session_count)
    assistant = assistant_for_session(context.assistant, settings, pn.state.headers, app.user)
    views = {"marketplace": lambda: MarketplaceView(state=MarketplaceState(app, context.marketplace)),
             "orders": lambda: OrdersView(state=OrdersState(app, context.orders, context.feed)),
             "catalog": lambda: CatalogView(state=CatalogState(app, context.catalog)),
             "assistant": lambda: AssistantView(state=AssistantState(app, assistant),
                                                dashboard_url=context.dashboard_links),
             "system": lambda: SystemView(system)}
    names = list(WORKSPACES)
    tabs = LazyTabs([(WORKSPACES[n], views[n]) for n in names], active=names.index(app.workspace))
    tabs.param.watch(lambda e: app.param.update(workspace=names[e.new]), "active")
    app.param.watch(lambda e: tabs.param.update(active=names.index(e.new)), "workspace")
    system.visible = app.workspace == "system"
    app.param.watch(lambda e: system.param.update(visible=e.new == "system"), "workspace")

    chips = dict(color="default", variant="outlined", sx={"color": "white", "borderColor": "rgba(255,255,255,0.6)"})
    header = pmui.Row(pmui.Chip(label=app.param.connection, icon="storage", **chips),
                      pmui.Chip(label=app.param.user, icon="person", **chips), align="center")
    page = pmui.Page(title=TITLE, header=[header], main=[notice(app.param.message), tabs], busy_indicator=None)
    return upstream_fixes.detach_from_process_busy(page)

