"""Opening the app under AppTest as a shared link does: query parameters and session values first, then a page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ..conftest import ROOT


def open_app(page: str, session: dict | None = None, timeout: float = 240, **params: str) -> AppTest:
    """The home page run once with `params` in the URL and `session` in st.session_state, then `page`; no exception."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.query_params.update(params)
    for key, value in (session or {}).items():
        at.session_state[key] = value
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at
