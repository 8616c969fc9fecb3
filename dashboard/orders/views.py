"""The Orders workspace: the grid, today's analytics, CSV import and export, and the order form."""
from __future__ import annotations

import panel as pn
import panel_material_ui as pmui
import param

from ..widgets import LazyTabs
from .form import OrderForm
from .grid import OrdersGrid
from .state import TABS, OrdersState
from .today import TodayView
from .transfer import TransferView

TITLES = {"orders": "Orders", "today": "Today", "import": "Import & export"}


class OrdersView(pn.viewable.Viewer):
    state = param.ClassSelector(class_=OrdersState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        builders = {"orders": lambda: OrdersGrid(state=s), "today": lambda: TodayView(state=s),
                    "import": lambda: TransferView(state=s)}
        self.tabs = LazyTabs.of(s.param.tab, {v: (TITLES[v], builders[v]) for v in TABS})
        self.dialog = pmui.Dialog(open=False, title="", width_option="lg", show_close_button=True,
                                  sizing_mode="stretch_width")
        self.dialog.param.watch(self._closed, "open")
        s.param.watch(self._show_order, "order")
        self._show_order()

    def shown(self) -> None:
        self.tabs.shown()

    def _show_order(self, *_) -> None:
        order = self.state.order
        if order is None:
            self.dialog.open = False
            return
        self.dialog.param.update(objects=[OrderForm(state=self.state, order_id=order)],
                                 title="New order" if order == 0 else f"Order {order}", open=True)

    def _closed(self, event) -> None:
        if not event.new and self.state.order is not None:
            self.state.order = None

    def __panel__(self):
        return pn.Column(self.tabs, self.dialog, sizing_mode="stretch_width")
