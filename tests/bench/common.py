"""Shared pieces for benchmarks: a throwaway embedded server with demo data, and statistics."""
from __future__ import annotations

import statistics
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def server_rss_mb(pid: int) -> float:
    """RSS of `python serve.py` and its worker processes (not the embedded PostgreSQL), in MiB."""
    import psutil
    root = psutil.Process(pid)
    servers = [root] + [c for c in root.children(recursive=True) if "python" in c.name().lower()]
    return sum(p.memory_info().rss for p in servers) / 2**20


def percentiles(samples_s, *points) -> dict[str, float]:
    values = np.asarray(samples_s, dtype=float) * 1000
    return {f"p{p}": round(float(np.percentile(values, p)), 2) for p in (points or (50, 95))}


def describe(name: str, samples_s) -> str:
    p = percentiles(samples_s, 50, 95, 99)
    return (f"{name}: n={len(samples_s)} p50={p['p50']} ms p95={p['p95']} ms p99={p['p99']} ms "
            f"mean={statistics.fmean(samples_s) * 1000:.2f} ms")


@contextmanager
def demo_backend(scale: float = 1.0, keep_dir: str | None = None):
    """The app's own embedded backend in a temporary (or given) data directory, demo data loaded."""
    from data.backend import open_backend, prepare
    from data.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        data_dir = Path(keep_dir or tmp) / "pgdata"
        settings = load_settings({"EMBEDDED_DATA_DIR": str(data_dir), "DEMO_SCALE": str(scale)})
        backend = open_backend(settings)
        try:
            prepare(backend, progress=True)
            yield backend
        finally:
            backend.close()
