"""Heavy jobs (ideal images, attacks, training) share the server: at most N run at once, the rest queue.

All sessions of a Streamlit server are threads of one process, so a process-wide gate is enough.
A waiting session shows "queued (k ahead)" and its page stays responsive to the other users.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from explain.ui.i18n import t


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


def _heavy_threads() -> int:
    """CPU threads for a heavy job: all cores but one, so the server keeps a core for everyone's clicks."""
    return max(1, (os.cpu_count() or 2) - 1)


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
    import streamlit as st

    notice = st.empty()

    def waiting(ahead: int) -> None:
        notice.info(t("⏳ Queued: {n} heavy job(s) ahead of “{label}”. Other pages stay usable.", n=ahead, label=label))

    with GATE.slot(waiting), lower_priority():
        notice.empty()
        if not torch.cuda.is_available():
            torch.set_num_threads(_heavy_threads())
        yield
