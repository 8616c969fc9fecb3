"""Every Databricks call a question makes ends by the question's deadline.

The SDK bounds each call on its own (HTTP time-out, and retries of a 429 or 503 for up to half a
minute), so a question whose calls each take their full allowance could wait minutes with nothing
on screen. `before(deadline, call)` waits only as long as the question has left; a call still
running then is left to end on the SDK's own bounds in a thread of its own.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Callable, TypeVar

from ..errors import AppError, Category

T = TypeVar("T")
CALLS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="databricks-call")


def before(deadline: float, call: Callable[[], T], *, what: str = "Genie did not answer in time.") -> T:
    """`call()`'s result, or a time-out error (`what`) once `deadline` (time.monotonic) has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise AppError(what, category=Category.TIMEOUT)
    future = CALLS.submit(call)
    try:
        return future.result(timeout=remaining)
    except FutureTimeout:
        future.cancel()
        raise AppError(what, category=Category.TIMEOUT) from None
