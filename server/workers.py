"""The app as several server processes: `serve.py` prepares the database once, then runs this
supervisor, which starts `serve.py --worker-port N` processes on loopback ports, serves the public
port through the session-aware `Balancer`, restarts a worker that dies, and on SIGTERM stops them
all (each closes its sessions and pool) before the database.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from data.net import free_port

from .balancer import Balancer, Worker, get_json

log = logging.getLogger(__name__)

SERVE = Path(__file__).resolve().parent.parent / "serve.py"
STARTUP_TIMEOUT = 120        # seconds a worker may take to answer /health
STOP_TIMEOUT = 10            # seconds workers get to exit after SIGTERM (Databricks Apps allows 15 in all)
RESTART_PAUSE = 2            # seconds between restarts of a worker that keeps dying
# Two processes per CPU: the OS then shares the cores between them, so a quick click is not queued
# behind a slow assistant answer in the same process. On 2 cores at 80 people, p95 652 ms with four
# processes against 2.2 s with two (tests/bench/load.py; README, Performance).
PROCESSES_PER_CPU = 2
MAX_AUTO_PROCESSES = 8


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


class WorkerPool:
    def __init__(self, count: int, env: dict[str, str], arguments: list[str]):
        self.env, self.arguments = env, arguments
        self.workers = [Worker("127.0.0.1", free_port()) for _ in range(count)]
        self.processes: list[subprocess.Popen | None] = [None] * count
        self.restarts = 0
        self.stopping = False

    def _spawn(self, index: int) -> None:
        worker = self.workers[index]
        env = {**self.env, "APP_WORKER": str(index + 1), "APP_WORKERS": str(len(self.workers))}
        self.processes[index] = subprocess.Popen(
            [sys.executable, str(SERVE), *self.arguments, "--worker-port", str(worker.port)], env=env)

    async def _until_alive(self, index: int) -> None:
        worker, process = self.workers[index], self.processes[index]
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None:
            try:
                await get_json(worker, "/health", timeout=2)
                worker.alive = True
                log.info("worker %d ready port=%d pid=%d", index + 1, worker.port, process.pid)
                return
            except (OSError, ConnectionError, asyncio.TimeoutError, ValueError):
                await asyncio.sleep(0.1)
        raise RuntimeError(f"worker {index + 1} did not start (exit status {process.poll()})")

    async def start(self) -> None:
        for index in range(len(self.workers)):
            self._spawn(index)
        await asyncio.gather(*(self._until_alive(i) for i in range(len(self.workers))))

    async def watch(self) -> None:
        """Restart workers that exit while the app is serving."""
        while not self.stopping:
            for index, process in enumerate(self.processes):
                if process is not None and process.poll() is not None and not self.stopping:
                    self.workers[index].alive = False
                    self.restarts += 1
                    log.error("worker %d exited with status %s; starting it again", index + 1, process.returncode)
                    await asyncio.sleep(RESTART_PAUSE)
                    self._spawn(index)
                    try:
                        await self._until_alive(index)
                    except RuntimeError as exc:
                        log.error("%s", exc)
            await asyncio.sleep(0.5)

    async def stop(self) -> None:
        self.stopping = True
        running = [p for p in self.processes if p is not None and p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while any(p.poll() is None for p in running) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for process in running:
            if process.poll() is None:
                log.warning("worker pid=%d did not stop in %d s; killing it", process.pid, STOP_TIMEOUT)
                process.kill()
                process.wait()


async def serve_with_workers(settings, environment: dict[str, str], arguments: list[str], on_ready) -> None:
    """Serve until SIGTERM or SIGINT with APP_PROCESSES workers behind the balancer; the
    workers get the same `environment` and `arguments`, and so the same settings."""
    pool = WorkerPool(process_count(settings.processes), environment, arguments)
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
