"""Feature maps and Classify as a student reads them, in Chromium against the app started the README way (issue 15,
items 5 and 9): what each picture shows must be checkable against the library, in English and in Korean."""

from __future__ import annotations

import re
import time
from urllib.parse import urljoin

import cv2
import numpy as np
import pytest

from ..live_app import choose, press_slider, settle
from .conftest import assert_no_exception

pytestmark = pytest.mark.browser
HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def chelsea_maps(lite0, chelsea):
    """Every layer's maps of the default sample, recorded here as the page records them."""
    from explain.featuremaps import record_image
    from explain.images import prepare

    return record_image(lite0, prepare(chelsea, lite0.preprocess).tensor).maps


def _open(tab, url: str) -> None:
    tab.goto(url)
    tab.locator("h1").first.wait_for()
    settle(tab)


def _main(tab):
    return tab.get_by_test_id("stMainBlockContainer")


def _image(tab, caption: str):
    """The st.image whose caption starts with `caption`."""
    return _main(tab).locator('[data-testid="stImage"]').filter(
        has=tab.locator('[data-testid="stImageCaption"]', has_text=re.compile("^" + re.escape(caption)))
    )


def _pixels(tab, caption: str) -> np.ndarray:
    """The picture the browser was sent for the image captioned `caption`, as RGB."""
    src = _image(tab, caption).first.locator("img").get_attribute("src")
    body = tab.request.get(urljoin(tab.url, src)).body()
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


_READ_CHARTS = """plots => plots.map(p => ({
    title: (p.querySelector(".gtitle") || {}).textContent || "",
    x: Array.from((p._fullData && p._fullData[0] && p._fullData[0].x) || []).map(String),
    y: Array.from((p._fullData && p._fullData[0] && p._fullData[0].y) || []).map(Number),
    ytitles: Array.from(p.querySelectorAll(".g-ytitle text, .g-y2title text")).map(e => e.textContent),
    annotations: Array.from(p.querySelectorAll(".annotation-text")).map(e => e.textContent),
}))"""


def _charts(tab, ready=lambda charts: bool(charts), timeout_s: float = 15.0) -> list[dict]:
    """Every Plotly chart of the page: its bars (x, y) and the y-axis title and annotations as drawn in the SVG.

    Plotly draws after the element appears, so this reads again until `ready(charts)` holds (or the time is up,
    and the caller's assertion says what was there)."""
    deadline = time.monotonic() + timeout_s
    while True:
        charts = _main(tab).locator(".js-plotly-plot").evaluate_all(_READ_CHARTS)
        if ready(charts) or time.monotonic() > deadline:
            return charts
        tab.wait_for_timeout(200)


def _chart(tab, title: str) -> dict:
    charts = _charts(tab, lambda cs: any(c["title"] == title and c["x"] for c in cs))
    found = [c for c in charts if c["title"] == title]
    assert found, f"no chart titled {title!r}: {[c['title'] for c in charts]}"
    return found[0]


def _assert_bars_are_the_pooled_values(chart: dict, pooled: np.ndarray) -> None:
    """Strongest first, channel numbers on the axis, the values the network computed."""
    shown = [int(x) for x in chart["x"]]
    assert len(shown) >= 10
    assert shown == [int(i) for i in np.argsort(-pooled, kind="stable")[: len(shown)]]
    np.testing.assert_allclose(chart["y"], pooled[shown], rtol=1e-3, atol=1e-3)


def test_a_layer_of_one_by_one_maps_shows_its_channel_values_as_bars_not_flat_squares(server, page, chelsea_maps):
    pooled = chelsea_maps["global_pool.pool"].flatten().numpy()
    _open(page, f"{server}/Feature_maps?layer=global_pool.pool")
    assert page.get_by_role("combobox", name="Layer", exact=True).input_value().startswith("21. global_pool.pool · ")
    main = _main(page).inner_text()
    assert "One channel, enlarged" not in main and "over the photo" not in main  # no flat square, no darkened photo
    assert _image(page, "global_pool.pool:").count() == 0  # no grid of 1×1 squares
    _assert_bars_are_the_pooled_values(_chart(page, "global_pool.pool: one number per channel, strongest first"), pooled)

    choose(page, "Layer", "19. conv_head")  # back to a layer with maps: the grid and the enlarged channel return
    settle(page)
    assert _image(page, "conv_head: 64 of 1280 channels").count() == 1
    assert page.get_by_role("heading", name="One channel, enlarged").count() == 1
    choose(page, "Layer", "21. global_pool.pool")
    settle(page)
    assert page.get_by_role("heading", name="One channel, enlarged").count() == 0
    _assert_bars_are_the_pooled_values(_chart(page, "global_pool.pool: one number per channel, strongest first"), pooled)
    assert_no_exception(page)


def test_grid_tiles_carry_their_channel_numbers_and_the_overlay_uses_the_chosen_colour_map(server, page, chelsea_maps):
    from explain.featuremaps import channel_grid, channel_image, top_channels

    fmap = chelsea_maps["blocks.4.0"]
    _open(page, f"{server}/Feature_maps?layer=blocks.4.0")
    shown = _pixels(page, "blocks.4.0: 64 of 112 channels")
    numbered = channel_grid(fmap, top_channels(fmap, 64))  # what the library draws: a number above every tile
    assert numbered.numbered and shown.shape == numbered.image.shape
    assert np.abs(shown.astype(int) - numbered.image).mean() < 2

    choose(page, "Colour map", "magma")
    settle(page)
    assert press_slider(page, "Overlay strength", "End") == "1.00"  # the overlay is then the heat map alone
    channel = int(page.get_by_role("spinbutton", name="Channel", exact=True).input_value())
    alone = _pixels(page, f"channel {channel}")
    over = _pixels(page, f"channel {channel} over the photo")
    expected = channel_image(fmap, channel, alone.shape[1::-1], "magma")
    assert np.abs(alone.astype(int) - expected).mean() < 4
    assert np.abs(over.astype(int) - alone).mean() < 4  # one colour map for the channel and its overlay
    assert_no_exception(page)


def test_classify_draws_the_preprocessing_steps_at_their_true_relative_sizes(server, page):
    _open(page, f"{server}/Classify")
    widths = {}
    for step in ("1. Original", "2. Shorter side", "3. Centre crop"):
        box = _image(page, step).first.locator("img").bounding_box()
        widths[step] = box["width"]
    # Chelsea: 451×300 → 385×256 → 224×224
    assert widths["2. Shorter side"] / widths["1. Original"] == pytest.approx(385 / 451, rel=0.04)
    assert widths["3. Centre crop"] / widths["2. Shorter side"] == pytest.approx(224 / 385, rel=0.04)
    assert_no_exception(page)


def test_korean_axis_titles_are_upright_and_a_pooled_layer_reads_in_korean(server, page, chelsea_maps):
    """Rotated Hangul is unreadable (the syllables come out sideways): Korean axis titles are drawn horizontally."""
    _open(page, f"{server}/Feature_maps?lang=ko&layer=blocks.4.0")
    # the top channels are inline SVG (explain/ui/svgbars.py): the axis title is a line of the page's text, nothing rotated
    bars = page.locator(".cnn-lens-bars").first
    bars.wait_for()
    assert "평균" in bars.inner_text() and "채널" in bars.inner_text()
    assert bars.evaluate("e => [...e.querySelectorAll('*')].every(n => !/rotate/.test(n.getAttribute('transform') || ''))")
    charts = _charts(page, lambda cs: True)
    for chart in charts:  # what Plotly the page still draws (the neuron's position map) keeps Korean titles upright too
        assert not any(HANGUL.search(title) for title in chart["ytitles"]), chart

    _open(page, f"{server}/Feature_maps?lang=ko&layer=global_pool.pool")
    pooled = chelsea_maps["global_pool.pool"].flatten().numpy()
    charts = _charts(page, lambda cs: any(c["title"].startswith("global_pool.pool") and c["x"] for c in cs))
    bars = [c for c in charts if c["title"].startswith("global_pool.pool")]
    assert bars and HANGUL.search(bars[0]["title"])
    _assert_bars_are_the_pooled_values(bars[0], pooled)
    assert not any(HANGUL.search(title) for title in bars[0]["ytitles"])
    assert_no_exception(page)


_COUNT_HISTORY = """() => { window.__historyWrites = [];
  for (const name of ["pushState", "replaceState"]) {
    const real = history[name].bind(history);
    history[name] = (state, title, url) => { window.__historyWrites.push(String(url)); return real(state, title, url); };
  } }"""


def test_a_layer_switch_writes_the_address_once_with_every_choice_of_the_new_layer(server, page, chelsea_maps):
    """A layer switch changes layer, channel, y and x: each change of st.query_params was its own message, and the
    browser rewrote its history entry six times (about 38 ms of its time on every switch). Now one, and complete."""
    from explain.featuremaps import top_channels

    _open(page, f"{server}/Feature_maps?layer=blocks.2.0")
    page.evaluate(_COUNT_HISTORY)
    choose(page, "Layer", "blocks.4.0")
    page.get_by_text(re.compile(r"^blocks\.4\.0: \d+ of \d+ channels")).first.wait_for()
    settle(page)
    assert_no_exception(page)
    writes = page.evaluate("() => window.__historyWrites")
    fmap = chelsea_maps["blocks.4.0"]
    channel = top_channels(fmap, 1)[0]
    y, x = np.unravel_index(int(fmap[channel].argmax()), fmap[channel].shape)
    assert len(writes) == 1, writes
    for param, value in (("layer", "blocks.4.0"), ("channel", channel), ("y", y), ("x", x)):
        assert re.search(rf"[?&]{param}={value}(&|$)", page.url), (param, value, page.url)
