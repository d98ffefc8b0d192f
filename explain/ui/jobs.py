"""Long jobs on a page: the one runner (progress bar, live chart and preview, Stop, queued notice) and the gate.

Every long library job (ideal images, attacks, training) keeps one contract (explain/jobs.py): it reports
`Progress` to a callback and asks `should_stop`. `run_job` turns that into what a page shows, the same way
on every page; `stop_button` is its Stop. Heavy jobs share the server: at most N run at once, the rest
queue. All sessions of a Streamlit server are threads of one process, so a process-wide gate is enough;
a waiting session shows "queued (k ahead)" and its page stays responsive to the other users.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import streamlit as st
import torch

from explain.jobs import Progress
from explain.ui.errors import run_safely
from explain.ui.i18n import t
from explain.ui.livechart import live_chart_html

T = TypeVar("T")


def _default_slots() -> int:
    env = os.environ.get("CNN_LENS_HEAVY_JOBS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    return 1 if not torch.cuda.is_available() else 2


class JobGate:
    """A first-come-first-served gate with a fixed number of slots."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._cond = threading.Condition()
        self._running = 0
        self._queue: list[int] = []
        self._next_ticket = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._queue)

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None, poll_s: float = 0.5) -> Iterator[None]:
        """Hold one slot for the block; on_wait(jobs_ahead) is called while queued."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._queue.append(ticket)
            try:
                while self._running >= self.slots or self._queue[0] != ticket:
                    if on_wait is not None:
                        ahead = self._queue.index(ticket) + (self._running >= self.slots)
                        self._cond.release()
                        try:
                            on_wait(ahead)
                        finally:
                            self._cond.acquire()
                    self._cond.wait(timeout=poll_s)
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.remove(ticket)
            self._running += 1
        try:
            yield
        finally:
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


GATE = JobGate(_default_slots())


def _share_the_gil() -> None:
    """Every session is a thread of this process and they share one GIL. A heavy job's Python loop keeps it
    for 5 ms at a time by default; 1 ms hands it to a student's click sooner (bench/load.py, 4 runs each:
    light p95 622-940 ms with 1 ms, 669-1111 ms with 5 ms, heavy jobs as fast). CNN_LENS_SWITCH_MS overrides.
    """
    try:
        sys.setswitchinterval(max(0.1, float(os.environ.get("CNN_LENS_SWITCH_MS", "1"))) / 1000)
    except (ValueError, OverflowError):
        sys.setswitchinterval(0.001)


_share_the_gil()  # once per server process, with the gate it serves


def _other_sessions() -> int:
    """Browser sessions connected to this server besides the caller's (0 when it cannot tell: then it acts alone)."""
    try:
        from streamlit.runtime import Runtime

        return max(0, Runtime.instance()._session_mgr.num_active_sessions() - 1)
    except Exception:  # no runtime (AppTest, a bare script) or another session manager
        return 0


def _heavy_threads(others: int) -> int:
    """CPU threads for a heavy job: every core when its user is alone on the server (a laptop at home: keeping a core
    free for nobody halved the speed of a 2-core machine), all but one when others may click meanwhile."""
    cores = os.cpu_count() or 2
    return cores if others == 0 else max(1, cores - 1)


HEAVY_NICE = 10  # how much lower a heavy job's thread runs than everyone's clicks (Linux thread niceness)


@contextmanager
def lower_priority(step: int = HEAVY_NICE) -> Iterator[None]:
    """Run the block at a lower CPU priority: only this thread (Linux niceness is per thread), not the server.

    Raising it back needs privileges a server rarely has; then the thread stays lower, which is harmless:
    Streamlit ends a session's script thread when its run is over.
    """
    tid = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, before + step))
    except (AttributeError, OSError):  # not Linux, or not allowed: run as is
        yield
        return
    try:
        yield
    finally:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, before)
        except OSError:
            pass


@contextmanager
def heavy_job(label: str) -> Iterator[None]:
    """Run a heavy job in a slot of the shared gate, showing a 'queued' notice while waiting."""
    notice = st.empty()

    def waiting(ahead: int) -> None:
        notice.info(t("⏳ Queued: {n} heavy job(s) ahead of “{label}”. Other pages stay usable.", n=ahead, label=label))

    others = _other_sessions()
    # alone on the server (a laptop at home), nobody's clicks need protecting: full speed, normal priority
    with GATE.slot(waiting), (lower_priority() if others else nullcontext()):
        notice.empty()
        if not torch.cuda.is_available():
            torch.set_num_threads(_heavy_threads(others))
        yield


# ---------------------------------------------------------------- the job runner: one way for every page to run a long job


@dataclass(frozen=True)
class JobView:
    """How a page wants a running job drawn; every part is optional.

    caption(progress): the progress bar's text (default: "label: step k of n").
    preview(progress): (image, caption) to show beside the chart, or None.
    chart(progress): the history so far as live-chart panels (explain/ui/livechart.py: inline SVG, no Plotly while the
        job needs the cores), or None.
    every: redraw the preview and the chart every N steps (run_job also caps how often it sends: BAR_EVERY_S, DRAW_EVERY_S).
    """

    caption: Callable[[Progress], str] | None = None
    preview: Callable[[Progress], tuple[Any, str] | None] | None = None
    chart: Callable[[Progress], Any] | None = None
    every: int = 1


@dataclass
class Job:
    """What a job's work function gets: report progress, ask whether to stop, keep what a stop should salvage."""

    callback: Callable[[Progress], None]
    should_stop: Callable[[], bool]
    keep: Callable[[Any], None]


@dataclass(frozen=True)
class JobOutcome(Generic[T]):
    """A job's result (None when it failed with a message already shown), and whether a click cut it short."""

    result: T | None
    interrupted: bool = False


BAR_EVERY_S = 1.0  # the progress bar's text at most once a second, with the preview and chart: each message is a redraw
# in the user's browser (Chromium's CPU per 10 s ideal image: 2.9-3.4 s at 2 Hz, 2.1-2.7 s at 1 Hz; bench/app.py's machine)
DRAW_EVERY_S = 1.0  # a live preview and chart at most once a second


def _marker(key: str) -> str:
    return f"{key}_job"


def _stop_flag(key: str) -> str:
    return f"{key}_stop"


def _stop_button_key(key: str) -> str:
    return f"{key}_stop_btn"


def job_running(key: str) -> bool:
    """True while a job of this key is running (or was cut short by a click and is not salvaged yet)."""
    return _marker(key) in st.session_state


def _stop_queued(key: str) -> bool:
    """True when this job's Stop was clicked while the job runs inside a fragment (st.fragment).

    Streamlit queues a fragment's rerun behind the running one instead of interrupting it, so the click's callback
    (which sets the stop flag) would run only after the job had finished. The click itself is already in the
    queued rerun's widget states: read it there. Pages whose job runs in a fragment keep their Stop button in it.
    """
    try:
        from streamlit.runtime.scriptrunner_utils.script_requests import ScriptRequestType
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

        ctx = get_script_run_ctx()
        requests = getattr(ctx, "script_requests", None)
        if requests is None or getattr(requests, "_state", None) != ScriptRequestType.RERUN:
            return False
        states = getattr(requests._rerun_data, "widget_states", None)
        suffix = f"-{_stop_button_key(key)}"  # Streamlit ends a keyed widget's id with "-" and its key
        return states is not None and any(w.id.endswith(suffix) and w.trigger_value for w in states.widgets)
    except Exception:  # another Streamlit: the click then stops the job when the fragment's run ends
        return False


def stop_button(key: str, where=None, **kwargs) -> None:
    """The Stop button of the job `key`; a click while no job runs does nothing (it must not stop the next job)."""

    def request_stop() -> None:
        if job_running(key):
            st.session_state[_stop_flag(key)] = True

    (where or st).button(t("Stop"), key=_stop_button_key(key), on_click=request_stop, **kwargs)


def run_job(
    key: str,
    label: str,
    work: Callable[[Job], T] | None,
    view: JobView = JobView(),
    salvage: Callable[[Any, Progress | None], T | None] | None = None,
) -> JobOutcome[T] | None:
    """Run a long library job with a progress bar, a live chart and preview, the queue notice and Stop.

    Call it on every run of the page: `work` is the job to start now (None when no start button was pressed).
    In a browser any click (Stop or another widget) reruns the page and ends the running script mid-job;
    the next call then salvages it: salvage(kept, last progress) gives the result so far (kept is what the
    work function passed to job.keep). Returns None when there is nothing to report; LensErrors are shown.
    """
    state = st.session_state
    marker = state.get(_marker(key))
    if marker is not None:  # the last run of this job was cut short by a click
        state.pop(_marker(key), None)
        state[_stop_flag(key)] = False
        result = run_safely(salvage, marker.get("kept"), marker.get("last")) if salvage else None
        return JobOutcome(result, interrupted=True)
    if work is None:
        return None
    marker = state[_marker(key)] = {"kept": None, "last": None}
    bar = st.progress(0.0, text=t("{label}: starting…", label=label))
    row = st.columns([1, 2]) if view.preview and view.chart else [st.container()]
    preview_slot = row[0].empty() if view.preview else None
    chart_slot = row[-1].empty() if view.chart else None

    drawn = {"bar": 0.0, "view": 0.0}

    def callback(progress: Progress) -> None:
        # Every message is drawn by the browser, which on a laptop shares the cores with the job: the bar moves at
        # most BAR_EVERY_S, the preview and chart every N steps but at most DRAW_EVERY_S (the last step always);
        # the chart is inline SVG (explain/ui/livechart.py), not Plotly, which cost the browser most of a core.
        marker["last"] = progress
        now, last = time.monotonic(), progress.step >= progress.total
        if last or now - drawn["bar"] >= BAR_EVERY_S:
            text = view.caption(progress) if view.caption else t("{label}: step {s} of {n}", label=label, s=progress.step, n=progress.total)
            bar.progress(progress.fraction, text=text)
            drawn["bar"] = now
        if (progress.step % max(1, view.every) and not last) or (now - drawn["view"] < DRAW_EVERY_S and not last):
            return
        if preview_slot is not None:
            shown = view.preview(progress)
            if shown is not None:
                preview_slot.image(shown[0], caption=shown[1], width="stretch")
                drawn["view"] = now
        if chart_slot is not None:
            panels = view.chart(progress)
            if panels is not None:
                chart_slot.markdown(live_chart_html(panels), unsafe_allow_html=True)
                drawn["view"] = now

    job = Job(callback, lambda: bool(state.get(_stop_flag(key))) or _stop_queued(key), lambda kept: marker.__setitem__("kept", kept))
    try:
        with heavy_job(label):
            result = run_safely(work, job)
    except Exception:  # a bug: nothing to salvage on the next run (a click's rerun is a BaseException and passes)
        state.pop(_marker(key), None)
        state[_stop_flag(key)] = False
        raise
    state.pop(_marker(key), None)
    state[_stop_flag(key)] = False
    for slot in (bar, preview_slot, chart_slot):
        if slot is not None:
            slot.empty()
    return JobOutcome(result)
