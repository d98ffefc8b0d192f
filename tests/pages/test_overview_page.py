"""Network overview (lessons/1_Network_overview.py) and the neuron panel of Feature maps, under AppTest."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from torch import nn

from ..conftest import ROOT
from .apptest import open_app

TIMEOUT = 240
OVERVIEW = "lessons/1_Network_overview.py"
FEATURE_MAPS = "lessons/2_Feature_maps.py"


@pytest.fixture(scope="module")
def chelsea_trace(lite0, chelsea):
    from explain.images import prepare
    from explain.receptive import trace_network

    return trace_network(lite0.model, lite0.normalize(prepare(chelsea, lite0.preprocess).tensor))


def _result_line(at) -> str:
    lines = [s.value for s in at.success if "the network recorded" in s.value]
    assert len(lines) == 1, [s.value for s in at.success] + [w.value for w in at.warning]
    return lines[0]


def test_the_overview_lists_every_main_layer_and_opens_a_thumbnail_in_feature_maps(lite0, chelsea, chelsea_trace):
    from explain.featuremaps import record_image, top_channels
    from explain.images import prepare
    from explain.neuron import explain_neuron

    at = open_app(OVERVIEW)
    assert at.title[0].value == "Network overview"
    assert len(at.get("plotly_chart")) == 1
    recording = record_image(lite0, prepare(chelsea, lite0.preprocess).tensor)
    mains = [li.name for li in recording.layers if li.main]
    assert any(f"{len(mains)} main layers of efficientnet_lite0" in c.value for c in at.caption)
    pick = at.selectbox(key="ov_pick")
    assert len(pick.options) == len(mains) * 6
    index = 6 * mains.index("blocks.2.1") + 2  # the third-strongest channel of blocks.2.1
    channel = top_channels(recording.maps["blocks.2.1"], 3)[2]
    assert pick.set_value(index).run().selectbox(key="ov_pick").value == index
    at.button(key="ov_open").click().run()
    assert not at.exception and at.title[0].value == "Feature maps"
    assert at.query_params["layer"] == "blocks.2.1" and at.query_params["channel"] == str(channel)  # the link says so
    assert at.selectbox(key="fm_layer").value == "blocks.2.1" and at.number_input(key="fm_channel").value == channel
    # the neuron panel starts where that channel is largest, and its sum is the recorded value
    y, x = at.number_input(key="fm_y").value, at.number_input(key="fm_x").value
    fmap = chelsea_trace.outputs["blocks.2.1"][0, channel]
    assert float(fmap[y, x]) == pytest.approx(float(fmap.max()))
    expected = explain_neuron(chelsea_trace, "blocks.2.1", channel, y, x)
    assert f"the network recorded **{expected.value:.6f}**" in _result_line(at)
    assert at.query_params["y"] == str(y) and at.query_params["x"] == str(x)


def test_a_shared_link_sets_the_overview_and_presenter_mode_hides_its_slider():
    at = open_app(OVERVIEW, channels="3", sample="coffee")
    assert at.slider(key="ov_channels").value == 3 and len(at.selectbox(key="ov_pick").options) % 3 == 0
    assert at.query_params["channels"] == "3" and at.query_params["sample"] == "coffee"
    at.switch_page("lessons/1_Classify.py").run()
    assert "channels" not in at.query_params  # it belongs to the overview
    shown = open_app(OVERVIEW, presenter="1", lang="ko")
    assert shown.title[0].value == "네트워크 개요"
    assert not any(w.key == "ov_channels" for w in shown.slider)
    assert len(shown.selectbox(key="ov_pick").options) == 6 * 21


def test_a_neuron_link_and_typed_positions_follow_the_library(chelsea_trace):
    from explain.neuron import explain_neuron
    from explain.receptive import receptive_field

    at = open_app(FEATURE_MAPS, layer="conv_stem", channel="4", y="20", x="31")
    assert (at.number_input(key="fm_y").value, at.number_input(key="fm_x").value) == (20, 31)
    a = explain_neuron(chelsea_trace, "conv_stem", 4, 20, 31)
    assert f"**{a.value:.6f}**" in _result_line(at)
    x0, y0, x1, y1 = receptive_field(chelsea_trace, "conv_stem", 20, 31)
    captions = [img.caption for el in at.get("image") for img in el.proto.imgs]
    assert f"receptive field: 3×3 pixels (x {x0}..{x1 - 1}, y {y0}..{y1 - 1})" in captions
    assert any("input channel" in m.value for m in at.markdown)  # a regular convolution: grids per input channel
    # as static tables (window, kernel, products per input channel, and the steps after the sum): redrawn on every
    # layer switch, interactive dataframes cost the browser a canvas each
    from explain.neuron import term_grids

    assert not any(len(df.value) == 3 for df in at.dataframe)
    grids = [tb.value.astype(float).to_numpy() for tb in at.table if tb.value.shape == (3, 3)]
    inputs, weights, products = term_grids(a)
    top = int(np.argsort(-np.abs(products.reshape(len(products), -1).sum(1)), kind="stable")[0])
    assert len(grids) >= 3
    np.testing.assert_allclose(grids[0], inputs[top], atol=1e-4)
    np.testing.assert_allclose(grids[1], weights[top], atol=1e-4)
    np.testing.assert_allclose(grids[2], products[top], atol=1e-4)
    at.number_input(key="fm_y").set_value(21).run()
    assert at.query_params["y"] == "21"
    assert f"**{explain_neuron(chelsea_trace, 'conv_stem', 4, 21, 31).value:.6f}**" in _result_line(at)
    at.number_input(key="fm_channel").set_value(5).run()  # another channel starts at its own peak
    peak = chelsea_trace.outputs["conv_stem"][0, 5]
    assert float(peak[at.number_input(key="fm_y").value, at.number_input(key="fm_x").value]) == pytest.approx(float(peak.max()))
    at.selectbox(key="fm_layer").set_value("global_pool.pool").run()  # one number per channel: a mean, still adds up
    assert not at.exception and "mean" in " ".join(m.value for m in at.markdown)
    _result_line(at)


def _one_run(page: str, session: dict, **params: str) -> AppTest:
    """One run straight on `page` (AppTest cannot label an own model's option between two runs, so there is one)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    for key, value in session.items():
        at.session_state[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_the_overview_and_the_neuron_panel_work_with_my_model(lite0):
    from explain.models import Backbone

    model = copy.deepcopy(lite0.model)
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    mine = Backbone("my model", model.eval(), ["ants", "bees"], lite0.preprocess, lite0.device, "trained", base="efficientnet_lite0")
    session = {"custom_backbones": {"my model": mine}, "backbone_pending": "my model"}
    at = _one_run(OVERVIEW, session)
    assert at.title[0].value == "Network overview" and at.session_state["backbone"] == "my model"
    assert any("main layers of my model" in c.value for c in at.caption)
    fm = _one_run(FEATURE_MAPS, dict(session, custom_backbones={"my model": mine}), layer="blocks.3.1", channel="7")
    assert fm.session_state["backbone"] == "my model" and fm.selectbox(key="fm_layer").value == "blocks.3.1"
    _result_line(fm)
