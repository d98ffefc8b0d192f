"""The long-job contract: every optimisation, attack and training run reports and stops the same way.

A long job is a library function that takes

    callback(progress: Progress)   called after each step (and at phase changes), never required
    should_stop()                  asked after each step; True ends the job early with what it has
                                   (a function, or a threading.Event)

and returns a result object whose ``stopped`` says whether it ended early. `Progress` carries the step,
the total, the phase, the step's metrics and the history of every metric so far, so one job runner
(explain/ui/jobs.py) draws the progress bar, the live chart and the Stop button for any job.
No job sleeps, prints, or knows about Streamlit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

StopSignal = Callable[[], bool] | threading.Event | None


@dataclass(frozen=True)
class Progress:
    """Where a long job is: step `step` of `total` in `phase`, this step's metrics and every metric's history.

    history: metric name -> its values so far, one per report of that metric (read-only views).
    preview: what the job can show of itself right now (an ideal image so far), or None.
    """

    step: int
    total: int
    phase: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    history: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    preview: Any = None

    @property
    def fraction(self) -> float:
        """Share of the job done, 0…1."""
        return min(1.0, max(0.0, self.step / self.total)) if self.total > 0 else 0.0


def stop_requested(should_stop: StopSignal) -> bool:
    """True when the job was asked to stop (should_stop is None, a function, or a threading.Event)."""
    if should_stop is None:
        return False
    if isinstance(should_stop, threading.Event):
        return should_stop.is_set()
    return bool(should_stop())


class ProgressLog:
    """Keeps a job's metric history and hands Progress objects to its callback (nothing is kept without one).

    report(step, phase, metrics): append the metrics to their history; call the callback when there is one.
    """

    def __init__(self, total: int, callback: Callable[[Progress], None] | None = None):
        self.total = total
        self.callback = callback
        self.history: dict[str, list[float]] = {}

    def report(self, step: int, phase: str = "", metrics: Mapping[str, float] | None = None, preview: Any = None,
               total: int | None = None, keep: bool = True) -> None:
        """Record this step's metrics (keep=False: show them without adding to the history) and tell the callback."""
        metrics = dict(metrics or {})
        if keep:
            for name, value in metrics.items():
                self.history.setdefault(name, []).append(float(value))
        if total is not None:
            self.total = total
        if self.callback is not None:
            history = MappingProxyType({k: tuple(v) for k, v in self.history.items()})
            self.callback(Progress(step, self.total, phase, MappingProxyType(metrics), history, preview))
