"""Orders workspace: editable grid, order form, bulk actions, CSV import/export, today's analytics."""
from .state import OrdersState
from .views import OrdersView

__all__ = ["OrdersState", "OrdersView"]
