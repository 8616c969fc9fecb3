"""The app as several server processes: `serve.py` starts a zygote process that imports what a
worker needs (Panel, Bokeh, the views; seconds of CPU) while it starts and prepares the database;
then this supervisor forks the workers from the zygote, each serving on a loopback port, serves
the public port through the session-aware `Balancer`, restarts a worker that dies, and on SIGTERM
stops them all (each closes its sessions and pool) and the zygote before the database.

The zygote is multiprocessing's fork server: a fresh interpreter (fork and exec: it inherits
nothing of the supervisor) that imports `PRELOAD`, then forks one child per worker. It has no
thread of its own when it forks (OpenBLAS's, started by importing NumPy, is stopped by its at-fork
handler) and no database connection: each worker opens its own. Workers share the zygote's
memory until they write to it, and exit without tearing down an interpreter full of modules.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

STARTUP_TIMEOUT = 120        # seconds a worker may take to answer /health
STOP_TIMEOUT = 10            # seconds workers get to exit after SIGTERM (Databricks Apps allows 15 in all)
RESTART_PAUSE = 2            # seconds between restarts of a worker that keeps dying
# Two processes per CPU: the OS then shares the cores between them, so a quick click is not queued
# behind a slow assistant answer in the same process. On 2 cores at 80 people, p95 652 ms with four
# processes against 2.2 s with two (tests/bench/load.py; README, Performance).
PROCESSES_PER_CPU = 2
MAX_AUTO_PROCESSES = 8
# What a worker imports before it serves (serve._worker and serve._serve): the zygote imports it
# once, and every worker forked from it starts with it in memory. A module missing here is only
# imported later, in each worker (tests/test_processes.py checks the list covers serve.py).
PRELOAD = ("panel", "panel_material_ui", "dashboard.app", "server.endpoints", "server.security",
           "data.assistant", "data.assistant.costs", "data.assistant.history", "data.assistant.verified",
           "data.backend", "data.catalog", "data.changes", "data.editors", "data.health", "data.insights",
           "data.marketplace", "data.orders", "data.periodic")


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a container's CPU quota (cgroup v2)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, count)


def process_count(setting: int | str) -> int:
    """How many server processes APP_PROCESSES asks for: a number, or `auto`."""
    if setting == "auto":
        return min(available_cpus() * PROCESSES_PER_CPU, MAX_AUTO_PROCESSES)
    return int(setting)


# -- the zygote ---------------------------------------------------------------------------------

def start_zygote(extra: tuple[str, ...] = ()) -> multiprocessing.context.BaseContext:
    """Start the process workers are forked from, to import `PRELOAD` and `extra`. It returns at
    once: the zygote imports on another core meanwhile, and the first worker's start waits until it
    has. Call it first thing (it is a fresh interpreter and inherits nothing of the supervisor, so
    this is for the start-up time only)."""
    from multiprocessing import forkserver
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOAD, *extra])
    forkserver.ensure_running()
    return context


def stop_zygote(timeout: float = 5) -> None:
    """Stop the zygote, once the workers have exited. It holds nothing of value (no connection, no
    file), so SIGTERM ends it at once, without the seconds an interpreter full of Panel takes to exit."""
    from multiprocessing import forkserver
    server = forkserver._forkserver        # the standard library offers only _stop(), which may wait forever
    pid, alive = server._forkserver_pid, server._forkserver_alive_fd
    if pid is None:
        return
    server._forkserver_pid = server._forkserver_alive_fd = None
    os.close(alive)
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while os.waitpid(pid, os.WNOHANG)[0] == 0:
            if time.monotonic() > deadline:
                log.warning("zygote pid=%d did not stop in %.0f s; killing it", pid, timeout)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.01)
    except (ChildProcessError, ProcessLookupError):
        pass
    address, server._forkserver_address = server._forkserver_address, None
    if isinstance(address, str) and not address.startswith("\0"):
        try:
            os.unlink(address)
        except OSError:
            pass


def _run_worker(target: Callable[[int], int], environment: dict[str, str], port: int) -> None:
    """In a worker, just forked from the zygote: its environment, then `target(port)` until it returns."""
    os.environ.update(environment)
    _stop_with_the_supervisor()
    try:
        code = target(port)
    except Exception:           # one line in the log, not multiprocessing's multi-line traceback
        logging.getLogger("serve").exception("worker %s failed", environment.get("APP_WORKER"))
        code = 1
    if code:
        raise SystemExit(code)


def _stop_with_the_supervisor() -> None:
    """SIGTERM to this worker when the supervisor is gone, even killed, so that no worker outlives
    it holding a port and the zygote (which exits once no worker holds it)."""
    import threading
    from multiprocessing.connection import wait
    parent = multiprocessing.parent_process()       # its sentinel ends when the supervisor does
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


# -- the workers --------------------------------------------------------------------------------

class WorkerPool:
    """`target(port)` runs in each worker, forked from the zygote of `context`; the environment of
    a worker is `env` with APP_WORKER (its number, from 1) and APP_WORKERS (how many)."""

    def __init__(self, count: int, env: dict[str, str], target: Callable[[int], int],
                 context: multiprocessing.context.BaseContext):
        from data.net import free_port

        from .balancer import Worker
        self.env, self.target, self.context = env, target, context
        self.workers = [Worker("127.0.0.1", free_port()) for _ in range(count)]
        self.processes: list[multiprocessing.process.BaseProcess | None] = [None] * count
        self.restarts = 0
        self.stopping = False
        self._spawning: asyncio.Future | None = None

    async def _spawn(self, index: int) -> None:
        """Fork worker `index`, in a thread: it blocks while the zygote is still importing."""
        self._spawning = asyncio.ensure_future(asyncio.to_thread(self._fork, index))
        await asyncio.shield(self._spawning)     # a cancelled watcher leaves it to stop() to finish

    def _fork(self, index: int) -> None:
        worker = self.workers[index]
        env = {**self.env, "APP_WORKER": str(index + 1), "APP_WORKERS": str(len(self.workers))}
        process = self.context.Process(target=_run_worker, args=(self.target, env, worker.port),
                                       name=f"worker-{index + 1}", daemon=True)
        process.start()
        self.processes[index] = process

    async def _until_alive(self, index: int) -> None:
        from .balancer import get_json
        worker, process = self.workers[index], self.processes[index]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and process.exitcode is None:
            try:
                await get_json(worker, "/health", timeout=2)
                worker.alive = True
                log.info("worker %d ready port=%d pid=%d", index + 1, worker.port, process.pid)
                return
            except (OSError, ConnectionError, asyncio.TimeoutError, ValueError):
                await asyncio.sleep(0.05)
        raise RuntimeError(f"worker {index + 1} did not start (exit status {process.exitcode})")

    async def start(self) -> None:
        # One at a time, off the event loop: the first waits for the zygote's imports.
        for index in range(len(self.workers)):
            await self._spawn(index)
        await asyncio.gather(*(self._until_alive(i) for i in range(len(self.workers))))

    async def watch(self) -> None:
        """Restart workers that exit while the app is serving."""
        while not self.stopping:
            for index, process in enumerate(self.processes):
                if self.stopping or (process is not None and process.exitcode is None):
                    continue
                self.workers[index].alive = False
                if process is not None:             # None: its last start failed; try again
                    self.restarts += 1
                    log.error("worker %d exited with status %s; starting it again", index + 1, process.exitcode)
                    process.close()
                    self.processes[index] = None
                await asyncio.sleep(RESTART_PAUSE)
                if self.stopping:
                    return
                try:
                    await self._spawn(index)
                    await self._until_alive(index)
                except (RuntimeError, OSError, EOFError) as exc:
                    log.error("worker %d could not be started: %s", index + 1, exc)
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        self.stopping = True
        if self._spawning is not None:          # a worker being forked now is stopped with the others
            await asyncio.gather(self._spawning, return_exceptions=True)
        running = [p for p in self.processes if p is not None and p.exitcode is None]
        for process in running:
            process.terminate()                     # SIGTERM
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(p.exitcode is None for p in running) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for process in running:
            if process.exitcode is None:
                log.warning("worker pid=%d did not stop in %d s; killing it", process.pid, STOP_TIMEOUT)
                process.kill()
                process.join(5)


async def serve_with_workers(settings, environment: dict[str, str], target: Callable[[int], int], on_ready,
                             context: multiprocessing.context.BaseContext | None = None) -> None:
    """Serve until SIGTERM or SIGINT with APP_PROCESSES workers behind the balancer. Each worker
    runs `target(port)` with `environment` (and so the same settings) in os.environ. `context`:
    the one `start_zygote` returned, if it was called earlier."""
    from .balancer import Balancer
    pool = WorkerPool(process_count(settings.processes), environment, target, context or start_zygote())
    balancer = Balancer(pool.workers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: (log.info("signal %s received; shutting down",
                                                             signal.Signals(s).name), stop.set()))
    try:
        await pool.start()
        await balancer.start(settings.app_address, settings.app_port)
        on_ready()
        watcher = asyncio.ensure_future(pool.watch())
        await stop.wait()
        watcher.cancel()
    finally:
        await balancer.stop()
        await pool.stop()
        await asyncio.to_thread(stop_zygote)
