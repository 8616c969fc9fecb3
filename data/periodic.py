"""A task every so often on a thread of its own, in every process; the task itself decides, through
the database, whether this process should do it this time (insights, verified-question checks)."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from .errors import AppError

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, task: Callable[[], object], *, every: float, first_after: float = 5.0, name: str = "periodic"):
        self.task, self.every, self.first_after, self.name = task, every, first_after, name
        self._stop = threading.Event()

    def start(self) -> "Periodic":
        threading.Thread(target=self._run, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        wait = self.first_after
        while not self._stop.wait(wait):
            try:
                self.task()
            except AppError as exc:       # the database or a service is away: try again next time
                log.warning("%s could not run: %s", self.name, exc.detail or exc.message)
            except Exception:
                log.exception("%s failed", self.name)
            wait = self.every
