"""The one job runner of explain/ui: progress, Stop, and what a click in the middle of a job leaves."""

from streamlit.testing.v1 import AppTest


def _job_script():
    import streamlit as st

    from explain.errors import LensError
    from explain.jobs import ProgressLog
    from explain.ui.jobs import JobView, run_job, stop_button

    def work(job):
        job.keep("kept")
        log = ProgressLog(10, job.callback)
        for step in range(1, 11):
            log.report(step, "count", {"x": step})
            if st.session_state.get("mode") == "click" and step == 3 and not st.session_state.get("clicked"):
                st.session_state["clicked"] = True
                st.rerun()  # what a click (Stop or any widget) does to a running script in a browser
            if st.session_state.get("mode") == "lens" and step == 2:
                raise LensError("The photo is too small.")
            if job.should_stop():
                return f"stopped at {step}"
        return "finished"

    start = st.button("go", key="go")
    stop_button("demo")
    outcome = run_job("demo", "Demo", work if start else None, JobView(), salvage=lambda kept, last: f"{kept}, step {last.step}")
    if outcome is not None:
        st.session_state["outcome"] = (outcome.result, outcome.interrupted)


def _app(mode: str) -> AppTest:
    at = AppTest.from_function(_job_script, default_timeout=60)
    at.session_state["mode"] = mode
    return at.run()


def test_a_job_runs_to_its_end():
    at = _app("plain")
    at.button(key="go").click().run()
    assert not at.exception and at.session_state["outcome"] == ("finished", False)
    assert "demo_job" not in at.session_state and at.session_state["demo_stop"] is False


def test_a_click_in_the_middle_salvages_what_the_job_kept():
    at = _app("click")
    at.button(key="go").click().run()
    assert not at.exception
    assert at.session_state["outcome"] == ("kept, step 3", True)
    assert "demo_job" not in at.session_state


def test_stop_asks_the_running_job_and_is_ignored_while_idle():
    at = _app("plain")
    at.button(key="demo_stop_btn").click().run()  # idle: nothing to stop, the next job must run to its end
    assert "demo_stop" not in at.session_state or at.session_state["demo_stop"] is False
    at.button(key="go").click().run()
    assert at.session_state["outcome"] == ("finished", False)
    at.session_state["demo_stop"] = True  # what Stop's click sets while a job runs
    at.button(key="go").click().run()
    assert at.session_state["outcome"] == ("stopped at 1", False) and at.session_state["demo_stop"] is False


def test_a_users_error_is_shown_and_leaves_nothing_running():
    at = _app("lens")
    at.button(key="go").click().run()
    assert not at.exception
    assert at.session_state["outcome"] == (None, False)
    assert any("too small" in e.value for e in at.error) and "demo_job" not in at.session_state
