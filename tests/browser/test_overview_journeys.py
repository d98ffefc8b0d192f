"""Network overview and one neuron, clicked as a student clicks them, in Chromium against the app started the README
way (issue 18, parts 1 and 2): what opens and what the panel says must match the library."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ..live_app import settle
from .conftest import assert_no_exception

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chelsea_run(lite0, chelsea):
    """The default sample's recording and trace, made here as the app makes them."""
    from explain.featuremaps import record_image
    from explain.images import prepare
    from explain.overview import network_overview
    from explain.receptive import trace_network

    prepared = prepare(chelsea, lite0.preprocess)
    recording = record_image(lite0, prepared.tensor)
    overview = network_overview(recording, prepared.cropped, lite0.categories)
    return overview, trace_network(lite0.model, lite0.normalize(prepared.tensor))


def _main(tab):
    return tab.get_by_test_id("stMainBlockContainer")


def _click_point(tab, chart, index: int) -> None:
    """Click the centre of the index-th marker of the chart's scatter trace (Plotly hit-tests by position)."""
    point = chart.locator(".scatterlayer .trace").first.locator("path.point").nth(index)
    point.wait_for(state="attached")
    chart.scroll_into_view_if_needed()  # the mouse clicks where the viewport shows the point
    tab.wait_for_timeout(200)
    box = point.bounding_box()
    tab.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    tab.wait_for_timeout(200)  # Plotly finds the hovered point on mouse move
    tab.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_clicking_a_thumbnail_opens_that_layer_and_channel_in_feature_maps(server, page, chelsea_run):
    overview, trace = chelsea_run
    page.goto(f"{server}/Network_overview")
    page.get_by_role("heading", name="Network overview").first.wait_for()
    settle(page)
    assert_no_exception(page)
    chart = _main(page).locator(".js-plotly-plot").first
    column = [c.layer for c in overview.columns].index("blocks.3.0")
    index = sum(len(c.channels) for c in overview.columns[:column]) + 1  # the second-strongest channel of blocks.3.0
    layer, channel = "blocks.3.0", overview.columns[column].channels[1]
    _click_point(page, chart, index)
    page.wait_for_url(re.compile(rf"/Feature_maps\?.*layer={re.escape(layer)}"))
    page.get_by_role("heading", name="Feature maps").first.wait_for()
    settle(page)
    assert_no_exception(page)
    assert f"channel={channel}" in page.url  # the link names the layer and the channel
    assert re.match(rf"\d+\. {re.escape(layer)} · ", page.get_by_role("combobox", name="Layer", exact=True).input_value())
    assert page.get_by_role("spinbutton", name="Channel", exact=True).input_value() == str(channel)
    fmap = trace.outputs[layer][0, channel]
    y = int(page.get_by_role("spinbutton", name="Row y", exact=True).input_value())
    x = int(page.get_by_role("spinbutton", name="Column x", exact=True).input_value())
    assert float(fmap[y, x]) == pytest.approx(float(fmap.max()))  # the neuron panel starts at the channel's peak
    result = _main(page).locator('[data-testid="stAlertContentSuccess"]').filter(has_text="the network recorded")
    assert f"{float(fmap[y, x]):.6f}" in result.inner_text()


def test_clicking_a_position_explains_that_neuron_in_korean(server, page, chelsea_run):
    from explain.neuron import explain_neuron
    from explain.receptive import receptive_field

    _, trace = chelsea_run
    page.goto(f"{server}/Feature_maps?lang=ko&layer=blocks.1.0&channel=3")
    page.get_by_role("heading", name="뉴런 하나, 자세히 보기").first.wait_for()
    settle(page)
    assert_no_exception(page)
    from explain.ui.neuron import _block_peak, _block_side

    h, w = trace.outputs["blocks.1.0"].shape[2:]
    k = _block_side(h, w)  # a large map is drawn as one square per k×k block (the browser took seconds for one per position)
    rows, cols = -(-h // k), -(-w // k)
    assert 1 < k and rows * cols <= 32 * 32
    charts = _main(page).locator(".js-plotly-plot")
    position_map = charts.last  # after the grid's bar chart: the channel's positions, one marker per block
    assert position_map.locator(".scatterlayer .trace").first.locator("path.point").count() == rows * cols
    fmap = trace.outputs["blocks.1.0"][0, 3].numpy()
    y, x = _block_peak(fmap, 10, 12)  # a click on the block holding (10, 12) picks that block's strongest position
    assert y // k == 10 // k and x // k == 12 // k and fmap[y, x] == fmap[10 // k * k : 10 // k * k + k, 12 // k * k : 12 // k * k + k].max()
    assert (y, x) != tuple(int(v) for v in np.unravel_index(fmap.argmax(), fmap.shape))  # else the click would change nothing
    _click_point(page, position_map, (10 // k) * cols + 12 // k)
    page.wait_for_function(f"() => /[?&]y={y}(&|$)/.test(location.search) && /[?&]x={x}(&|$)/.test(location.search)")
    settle(page)
    assert_no_exception(page)
    assert page.get_by_role("spinbutton", name="행 y", exact=True).input_value() == str(y)
    a = explain_neuron(trace, "blocks.1.0", 3, y, x)
    result = _main(page).locator('[data-testid="stAlertContentSuccess"]').filter(has_text="이 뉴런에 기록한 값")
    assert f"{a.value:.6f}" in result.inner_text() and f"{a.result:.6f}" in result.inner_text()
    x0, y0, x1, y1 = receptive_field(trace, "blocks.1.0", y, x)
    assert _main(page).get_by_text(f"수용 영역: {x1 - x0}×{y1 - y0} 픽셀 (x {x0}..{x1 - 1}, y {y0}..{y1 - 1})").count() == 1
    assert _main(page).get_by_text("1×1 합성곱", exact=False).count() >= 1  # blocks.1.0 ends in a 1×1 convolution
