"""Work the first visits of the pages will need, done once per server in the background after its first page is drawn.

A classroom server is started minutes before anyone opens a page: by then the default network's results for the
default photo and the demo set (the Feature maps recording and trace, the Transfer advisor's measurements) sit in the
server-wide caches (explain.ui.session.shared_cached) with the very keys the pages ask for, the network that judges
ideal images is loaded, and so are Plotly's validators. Each step (at most ~1.5 s of CPU) starts only when no page has
run for IDLE_S, and the thread runs at the lowest CPU priority: a user's own clicks come first. (Niceness alone is not
enough: with the kernel's autogroups the browser and the server share the cores as two groups, whatever a thread's nice.)
Off with CNN_LENS_WARMUP=0 (the in-process page tests set it).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("cnn_lens")
_lock = threading.Lock()
_thread: threading.Thread | None = None
IDLE_S = 0.5  # each step waits until no page has run for this long: on a 2-core laptop a user's click comes first
_runs = {"active": 0, "ended": 0.0}
_runs_changed = threading.Condition()


@contextmanager
def page_running() -> Iterator[None]:
    """Around every run of a page (app.py): the warm-up starts a step only when none is running."""
    with _runs_changed:
        _runs["active"] += 1
    try:
        yield
    finally:
        with _runs_changed:
            _runs["active"] -= 1
            _runs["ended"] = time.monotonic()
            _runs_changed.notify_all()


def wait_until_idle(idle_s: float = IDLE_S, timeout_s: float = 600.0) -> None:
    """Block until no page has run for `idle_s` (or `timeout_s` has passed: a server that is never idle still warms)."""
    deadline = time.monotonic() + timeout_s
    with _runs_changed:
        while time.monotonic() < deadline:
            quiet_for = time.monotonic() - _runs["ended"]
            if _runs["active"] == 0 and quiet_for >= idle_s:
                return
            _runs_changed.wait(timeout=max(0.05, idle_s - quiet_for) if _runs["active"] == 0 else 0.5)


def start_warmup() -> threading.Thread | None:
    """Start the warm-up thread once per process; None when it is switched off."""
    global _thread
    if os.environ.get("CNN_LENS_WARMUP", "1") == "0":
        return None
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, name="cnn-lens-warmup", daemon=True)
            _thread.start()
    return _thread


def _run() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)  # its OpenMP workers inherit it
    except (OSError, AttributeError):
        pass
    began = time.perf_counter()
    try:
        warm(wait_until_idle)
    except Exception:  # a warm-up that fails costs nothing but the time it would have saved
        log.exception("warm-up failed (the pages compute what they need themselves)")
        return
    log.info("warm-up done in %.1f s", time.perf_counter() - began)


def warm(between=lambda: None) -> None:
    """Fill the server-wide caches for the default network, the first sample photo and the first demo set.

    between(): called before each step (the server's warm-up waits there until no page is running)."""
    from explain.images import SAMPLES, sample_image
    from explain.models import DEFAULT_BACKBONE
    from explain.synthesis import Target, held_out_judge
    from explain.transfer import DEMO_SETS, plan_training
    from explain.ui.backbones import cached_backbone, is_shared
    from explain.ui.featuremaps import record_photo, recording_key
    from explain.ui.neuron import trace_photo
    from explain.ui.plots import bar_chart
    from explain.ui.session import shared_cached
    from explain.ui.transfer import demo_splits, plan_key

    between()
    bar_chart([1.0, 2.0], ["a", "b"], "warm-up", "x", "y").to_json()  # Plotly loads its validators once per process
    backbone = cached_backbone(DEFAULT_BACKBONE)  # the sidebar's default, shared by every session
    if not is_shared(backbone):
        return
    image = sample_image(next(iter(SAMPLES)))
    key = recording_key(backbone, image)
    between()
    prepared, _ = shared_cached("recordings", key, lambda: record_photo(backbone, image))
    between()
    shared_cached("traces", key, lambda: trace_photo(backbone, prepared))
    between()
    splits = demo_splits(next(iter(DEMO_SETS)))
    shared_cached("tl_plan", plan_key(backbone, splits), lambda: plan_training(backbone, splits))
    judge = held_out_judge(backbone, Target("class", 0))  # the second network that judges every ideal image of a class
    if judge is not None:
        between()
        cached_backbone(judge)
