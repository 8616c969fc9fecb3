"""Retail360 orders, as one `Orders` object over four parts: reading (`reads`), the one write
rule and new orders (`writes`), CSV in and out (`transfer`) and today's figures (`today`)."""
from __future__ import annotations

import threading

from ..cache import Caches
from ..changes import ChangeFeed
from ..database import Database
from ..tables import Tables
from .reads import OrderReads, orders_listing
from .batches import Batch, OrderBatches
from .today import OrderToday
from .transfer import (EXPORT_COLUMNS, IMPORT_COLUMNS, MAX_IMPORT_ROWS, ImportPreview, ImportRow, OrderTransfer,
                       csv_lines)
from .writes import BulkRefused, EditorPolicy, NewCustomer, OrderConflict, OrderDraft, OrderWrites

__all__ = ["Batch", "BulkRefused", "EXPORT_COLUMNS", "EditorPolicy", "IMPORT_COLUMNS", "ImportPreview", "ImportRow",
           "MAX_IMPORT_ROWS", "NewCustomer", "OrderConflict", "OrderDraft", "Orders", "csv_lines"]


class Orders(OrderReads, OrderWrites, OrderTransfer, OrderToday, OrderBatches):
    def __init__(self, db: Database, tables: Tables, policy: EditorPolicy, *, timezone: str = "UTC",
                 feed: ChangeFeed | None = None):
        self.db, self.t, self.policy, self.timezone, self.feed = db, tables, policy, timezone, feed
        self._caches = Caches()
        self.listing = orders_listing(tables)
        self._bursts: dict[tuple, dict[int, dict]] = {}     # the change feed's latest bursts, as rows
        self._burst_lock = threading.Lock()
