"""Fixtures of the browser tests: one app server (started the README way) and one Chromium for the whole run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..live_app import CHROMIUM_ARGS, chromium_path, running_app

START_TIMEOUT_S = 90
RUN_TIMEOUT_MS = 120_000  # first model load + recording of every layer on a busy 2-core machine


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory) -> Path:
    """The channel microscope's index cache of the app under test (not the user's ~/.cache)."""
    return tmp_path_factory.mktemp("index_cache")


@pytest.fixture(scope="session")
def server(tmp_path_factory, index_dir) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port; yields its base URL."""
    from explain.microscope.store import INDEX_DIR_ENV

    if chromium_path() is None:
        pytest.skip("Chromium not found (/usr/bin/chromium): run scripts/setup_chromium.sh or apt-get install chromium")
    with running_app(tmp_path_factory.mktemp("streamlit") / "server.log", START_TIMEOUT_S, env={INDEX_DIR_ENV: str(index_dir)}) as base:
        yield base


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium not found (/usr/bin/chromium): run scripts/setup_chromium.sh or apt-get install chromium")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -r requirements-dev.txt)")
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context per test: a new Streamlit session, as a student opening a link."""
    context = browser.new_context(viewport={"width": 1280, "height": 1600}, device_scale_factor=1)
    tab = context.new_page()
    tab.set_default_timeout(RUN_TIMEOUT_MS)
    yield tab
    context.close()


def assert_no_exception(tab) -> None:
    errors = tab.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()
