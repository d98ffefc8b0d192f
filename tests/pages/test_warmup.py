"""The server's background warm-up (explain.ui.warmup): the first visits find its results under the keys they ask for."""

import threading


def test_the_warm_up_fills_what_the_first_visits_of_feature_maps_and_transfer_read(monkeypatch):
    from explain.ui import session, warmup

    monkeypatch.setattr(session, "_shared", {})  # this test's own server-wide caches
    warmup.warm()
    shared = session._shared
    assert {name: len(shared[name]) for name in ("recordings", "traces", "tl_plan")} == {"recordings": 1, "traces": 1, "tl_plan": 1}

    from .apptest import open_app

    at = open_app("lessons/2_Feature_maps.py")
    (recording,) = at.session_state["recordings"].values()
    assert recording is next(iter(shared["recordings"].values()))  # re-used, not recorded again
    (trace,) = at.session_state["traces"].values()
    assert trace is next(iter(shared["traces"].values()))
    at.switch_page("lessons/6_Transfer_learning.py").run()
    assert not at.exception
    (plan,) = at.session_state["tl_plan"].values()
    assert plan is next(iter(shared["tl_plan"].values()))  # the page's default demo set and split are the warmed ones


def test_a_shared_value_is_built_once_when_two_sessions_ask_at_the_same_time(monkeypatch):
    from explain.ui import session

    monkeypatch.setattr(session, "_shared", {})
    calls, gate = [], threading.Event()

    def build():
        calls.append(1)
        gate.wait(5)
        return object()

    got = []
    threads = [threading.Thread(target=lambda: got.append(session.shared_cached("x", "k", build))) for _ in range(3)]
    for th in threads:
        th.start()
    gate.set()
    for th in threads:
        th.join()
    assert len(calls) == 1 and len(got) == 3 and got[0] is got[1] is got[2]


def test_a_users_own_model_is_never_shared(lite0):
    from dataclasses import replace

    from explain.ui.backbones import is_shared

    assert is_shared(lite0)
    assert not is_shared(replace(lite0, source="trained", name="my model (efficientnet_lite0, extract)"))
    assert not is_shared(replace(lite0, source="file", name="efficientnet_lite0"))  # a file named like a registry network


def test_the_warm_up_waits_while_a_page_runs_and_a_moment_after():
    import time

    from explain.ui.warmup import page_running, wait_until_idle

    release = threading.Event()

    def a_page() -> None:
        with page_running():
            release.wait(5)

    page = threading.Thread(target=a_page)
    page.start()
    time.sleep(0.05)
    threading.Timer(0.3, release.set).start()
    began = time.monotonic()
    wait_until_idle(idle_s=0.2)
    waited = time.monotonic() - began
    page.join()
    assert 0.45 <= waited < 3.0  # until the page ended (0.3 s) and then 0.2 s of quiet
    began = time.monotonic()
    wait_until_idle(idle_s=0.0)
    assert time.monotonic() - began < 0.5  # nothing running: at once
