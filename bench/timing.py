"""Percentile summaries shared by the benchmark scripts."""

from __future__ import annotations

import threading


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 1]); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms_summary(ms: list[float]) -> dict:
    """Count, p50, p95 and max of a list of milliseconds, rounded to 0.01 ms."""
    def r(v):
        return None if v is None else round(v, 2)

    return {"n": len(ms), "p50_ms": r(percentile(ms, 0.5)), "p95_ms": r(percentile(ms, 0.95)), "max_ms": r(max(ms) if ms else None)}


def in_thread(fn):
    """fn() in a worker thread, as Streamlit runs a page (on a busy 2-core machine the main thread's OpenMP team
    spin-waits: a forward pass measured there took 4.4 s against 0.1 s in a worker thread, same process)."""
    out = {}
    worker = threading.Thread(target=lambda: out.update(value=fn()))
    worker.start()
    worker.join()
    return out["value"]
