import threading

from explain.ui.jobs import JobGate


def test_gate_runs_one_job_at_a_time_and_reports_the_queue():
    gate = JobGate(1)
    first_in = threading.Event()
    release_first = threading.Event()
    order: list[str] = []
    waits: list[int] = []

    def first():
        with gate.slot():
            order.append("first-start")
            first_in.set()
            release_first.wait(5)
            order.append("first-end")

    def second():
        def on_wait(ahead: int) -> None:
            waits.append(ahead)
            release_first.set()  # let the first finish once we know we are queued

        with gate.slot(on_wait, poll_s=0.01):
            order.append("second")

    a = threading.Thread(target=first)
    a.start()
    assert first_in.wait(5)
    b = threading.Thread(target=second)
    b.start()
    a.join(5)
    b.join(5)
    assert order == ["first-start", "first-end", "second"]
    assert waits and waits[0] >= 1
    assert gate.running == 0 and gate.waiting == 0


def test_gate_with_two_slots_runs_two_together():
    gate = JobGate(2)
    inside = threading.Barrier(2, timeout=5)
    done: list[int] = []

    def job(i):
        with gate.slot():
            inside.wait()  # both must be inside at the same time, or the barrier times out
            done.append(i)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(5)
    assert sorted(done) == [0, 1]


def test_an_error_inside_frees_the_slot():
    gate = JobGate(1)
    try:
        with gate.slot():
            raise ValueError("boom")
    except ValueError:
        pass
    with gate.slot():
        assert gate.running == 1
    assert gate.running == 0


def test_lower_priority_lowers_only_this_thread_and_gives_it_back():
    import os
    import sys

    import pytest

    from explain.ui.jobs import HEAVY_NICE, lower_priority

    if not sys.platform.startswith("linux"):
        pytest.skip("thread niceness is a Linux feature")
    tid = threading.get_native_id()
    before = os.getpriority(os.PRIO_PROCESS, tid)
    seen: dict[str, int] = {}
    go = threading.Event()

    def click() -> None:  # another session's script thread, started by the server, not by the heavy job
        go.wait(10)
        seen["other"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    other = threading.Thread(target=click)
    other.start()
    with lower_priority():
        seen["inside"] = os.getpriority(os.PRIO_PROCESS, tid)
        go.set()
        other.join()
    assert seen["inside"] == min(19, before + HEAVY_NICE)
    assert seen["other"] == before  # a new thread (another session's click) keeps the normal priority
    after = os.getpriority(os.PRIO_PROCESS, tid)
    assert after == before or (after == seen["inside"] and os.geteuid() != 0)  # unprivileged: cannot go back up


def test_a_heavy_job_alone_on_the_server_gets_every_core():
    import os

    from explain.ui.jobs import _heavy_threads, _other_sessions

    cores = os.cpu_count() or 2
    assert _heavy_threads(0) == cores  # nobody else to keep a core for
    assert _heavy_threads(3) == max(1, cores - 1)  # a classroom: one core stays for everyone's clicks
    assert _other_sessions() == 0  # no Streamlit server in this process: the job counts as alone
