"""Percentile summaries shared by the benchmark scripts."""

from __future__ import annotations


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
