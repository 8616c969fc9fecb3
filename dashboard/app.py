"""The page: one Material template holding the workspaces, built per browser session."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import holoviews as hv
import panel as pn
import panel_material_ui as pmui

from data.assistant import Assistant, assistant_for_session
from data.assistant.costs import AssistantCosts
from data.assistant.history import History
from data.assistant.verified import VerifiedQuestions
from data.catalog import Catalog
from data.changes import ChangeFeed
from data.errors import AppError, classify
from data.health import Monitor
from data.insights import Insights
from data.marketplace import DATE_RANGES, Marketplace
from data.orders import Orders
from data.presence import Presence
from data.processes import Processes
from data.refresh import Refresh

from .assistant import AssistantState, AssistantView
from .assistant.state import TABS as ASSISTANT_TABS
from . import upstream_fixes
from .catalog import CatalogState, CatalogView
from .catalog.state import TABS as CATALOG_TABS
from .links import PageLink, read_link
from .marketplace import MarketplaceState, MarketplaceView
from .marketplace.state import ALL_TYPES, TABS as MARKETPLACE_TABS
from .markup import alert
from .orders import OrdersState, OrdersView
from .orders.state import TABS as ORDERS_TABS
from .state import AppState, signed_in_user
from .system import SystemState, SystemView
from .widgets import LazyTabs, notice

log = logging.getLogger(__name__)

TITLE = "Lakebase Panel"
WORKSPACES = {"marketplace": "Marketplace", "orders": "Orders", "catalog": "Catalog", "assistant": "Assistant",
              "system": "System"}
DEFAULT_WORKSPACE = "marketplace"
WORKSPACE_TABS = {"marketplace": MARKETPLACE_TABS, "orders": ORDERS_TABS, "catalog": CATALOG_TABS,
                  "assistant": ASSISTANT_TABS}


@dataclass
class AppContext:
    """Process-wide services every session shares (one database, one set of caches)."""

    monitor: Monitor
    marketplace: Marketplace
    orders: Orders
    catalog: Catalog
    assistant: Assistant
    feed: ChangeFeed | None = None
    refresh: Refresh | None = None
    processes: Processes | None = None
    presence: Presence | None = None
    insights: Insights | None = None
    history: History | None = None
    costs: AssistantCosts | None = None
    verified: VerifiedQuestions | None = None
    dashboard_links: tuple[str, str] | None = None
    session_count: Callable[[], int | None] = lambda: None


def configure_panel(num_threads: int) -> None:
    """Process-wide Panel settings; call once before serving."""
    pn.extension("tabulator", notifications=True)
    upstream_fixes.apply()
    # Canvas, not WebGL: our charts hold hundreds of points, and a WebGL context per chart cost the
    # browser about 0.3 s of the first view on a machine without a GPU (tests/bench/first_view.py).
    hv.renderer("bokeh").webgl = False
    wanted = num_threads or None
    # Panel reads PANEL_NUM_THREADS itself (as text) and starts its pool on import; setting the same
    # size again raises "Thread pool already running" (Databricks Apps sets the variable from app.yaml).
    current = int(pn.config.nthreads) if pn.config.nthreads not in (None, "") else None
    if current != wanted:
        pn.config.nthreads = wanted
    pn.config.reconnect = True            # reconnect after a proxy drops the websocket
    pn.config.throttled = True            # sliders report when released, not on every pixel


def create_page(context: AppContext) -> pmui.Page:
    """The page of one browser session; if building it fails, a page that says so (never a traceback)."""
    try:
        return _page(context)
    except Exception as exc:  # the details go to the log, the person gets one sentence
        error = classify(exc)
        if not isinstance(exc, AppError):
            log.exception("page failed to build")
        return pmui.Page(title=TITLE, main=[alert(f"{error.message} Reload the page to try again.", severity="error")],
                         busy_indicator=None)


def _page(context: AppContext) -> pmui.Page:
    settings = context.monitor.backend.settings
    app = AppState(user=signed_in_user(pn.state.headers), connection=settings.mode_label)
    app.param.workspace.objects = list(WORKSPACES)
    cities = context.marketplace.cities()
    app.set_cities(cities)
    link = read_link(pn.state.session_args or {}, default_workspace=DEFAULT_WORKSPACE, tabs=WORKSPACE_TABS, choices={
        "workspace": lambda: list(WORKSPACES), "city": lambda: app.param.city.objects,
        "range": lambda: list(DATE_RANGES), "type": lambda: [ALL_TYPES, *context.marketplace.property_types()]})
    for message in link.messages:
        app.notify(message)
    page_link = PageLink(link, lambda: app.workspace, pn.state.location)
    app.param.update({"workspace": DEFAULT_WORKSPACE, **page_link.initial(AppState.LINK)})
    page_link.follow(app, AppState.LINK)
    app.param.watch(lambda e: page_link.workspace_changed(e.new), "workspace")

    def linked(state_class, workspace: str, *args):
        """A workspace's state, starting from the link's values and writing its changes back."""
        state = state_class(app, *args, **page_link.initial(state_class.LINK, workspace))
        page_link.follow(state, state_class.LINK, workspace)
        return state

    system = SystemState(context.monitor, session_count=context.session_count, costs=context.costs,
                         verified=context.verified, processes=context.processes)
    assistant = assistant_for_session(context.assistant, settings, pn.state.headers, app.user)
    views = {"marketplace": lambda: MarketplaceView(state=linked(MarketplaceState, "marketplace", context.marketplace,
                                                                         context.refresh)),
             "orders": lambda: OrdersView(state=linked(OrdersState, "orders", context.orders, context.feed,
                                                       context.presence)),
             "catalog": lambda: CatalogView(state=linked(CatalogState, "catalog", context.catalog)),
             "assistant": lambda: AssistantView(state=linked(AssistantState, "assistant", assistant, context.insights,
                                                                 context.history, context.verified),
                                                dashboard_url=context.dashboard_links, timezone=settings.timezone),
             "system": lambda: SystemView(system)}
    tabs = LazyTabs.of(app.param.workspace, {name: (title, views[name]) for name, title in WORKSPACES.items()})
    system.visible = app.workspace == "system"
    app.param.watch(lambda e: system.param.update(visible=e.new == "system"), "workspace")

    chips = dict(color="default", variant="outlined", sx={"color": "white", "borderColor": "rgba(255,255,255,0.6)"})
    header = pmui.Row(pmui.Chip(label=app.param.connection, icon="storage", **chips),
                      pmui.Chip(label=app.param.user, icon="person", **chips), align="center")
    return pmui.Page(title=TITLE, header=[header], main=[notice(app.param.message), tabs], busy_indicator=None)
