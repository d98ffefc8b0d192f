"""The Ideal images page end to end under AppTest: make, compare, stop, and open a channel from Feature maps."""

import pytest
from streamlit.testing.v1 import AppTest

from explain.featuremaps import probe_layers

from ..conftest import ROOT

TIMEOUT = 240
PAGE = "lessons/3_Ideal_images.py"


@pytest.fixture
def page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def small(at: AppTest, preset: str = "clear", steps: int = 3) -> None:
    """Few steps on a small image so each run takes seconds."""
    at.number_input(key=f"ideal_{preset}_steps").set_value(steps)
    at.select_slider(key=f"ideal_{preset}_size").set_value(96)
    if preset == "clear":
        at.number_input(key="ideal_clear_batch").set_value(1)
        at.number_input(key="ideal_clear_net_size").set_value(0)
    at.slider(key="ideal_preview_every").set_value(1)


def test_make_an_image_of_a_class(page):
    at = page
    small(at)
    at.selectbox(key="ideal_class").set_value(1)
    at.button(key="ideal_run").click().run()
    assert not at.exception
    (entry,) = at.session_state["ideal_gallery"]
    assert entry["target"] == "goldfish (1)" and entry["preset"] == "clear" and entry["steps_done"] == 3
    assert entry["image"].shape == (96, 96, 3) and not entry["stopped"]
    assert entry["second"][0] == "efficientnet_lite1" and entry["second"][1] >= 1
    assert "ideal_job" not in at.session_state
    assert any("Result: goldfish" in h.value for h in at.subheader)
    assert any("never used" in str(img.proto) for img in at.get("image"))
    assert len(at.get("plotly_chart")) >= 1
    at.button(key="ideal_run").click().run()  # a second image joins the gallery
    assert not at.exception and len(at.session_state["ideal_gallery"]) == 2


def test_compare_both_recipes_side_by_side(page):
    at = page
    small(at)
    at.button(key="ideal_compare").click().run()
    assert not at.exception
    gallery = at.session_state["ideal_gallery"]
    assert [e["preset"] for e in gallery] == ["course", "clear"]
    assert all(e["steps_done"] == 3 and e["image"].shape == (96, 96, 3) for e in gallery)
    assert at.session_state["ideal_pair"] == [e["id"] for e in gallery]
    assert any("The two recipes" in h.value for h in at.subheader)


def test_stop_ends_the_run_and_keeps_the_image(page):
    at = page
    small(at, steps=50)
    at.session_state["ideal_stop"] = True  # what the Stop button's callback sets while a job runs
    at.button(key="ideal_run").click().run()
    assert not at.exception
    (entry,) = at.session_state["ideal_gallery"]
    assert entry["stopped"] and entry["steps_done"] == 1 and entry["steps"] == 50
    assert any("Stopped at step 1 of 50" in w.value for w in at.warning)
    assert at.session_state["ideal_stop"] is False
    at.button(key="ideal_stop_btn").click().run()  # Stop while idle does not stop the next job
    assert not at.exception and at.session_state["ideal_stop"] is False


def test_channel_from_feature_maps_is_preselected(page):
    at = page
    at.switch_page("lessons/2_Feature_maps.py").run()
    assert not at.exception
    at.button(key="fm_to_ideal").click().run()
    assert not at.exception
    layer, channel = at.session_state["ideal_layer"], at.session_state["ideal_channel"]
    assert at.radio(key="ideal_mode").value == "channel"
    assert at.selectbox(key="ideal_layer").value == layer and at.number_input(key="ideal_channel").value == channel
    at.switch_page(PAGE)  # AppTest keeps rerunning the page it last switched to itself, not the script's switch
    small(at, steps=2)
    at.button(key="ideal_run").click().run()
    assert not at.exception
    assert at.selectbox(key="ideal_layer").value == layer
    (entry,) = at.session_state["ideal_gallery"]
    assert entry["kind"] == "channel" and entry["target"] == f"{layer} channel {channel}" and entry["second"] is None


def test_query_params_open_a_channel(lite0):
    layer = [li.name for li in probe_layers(lite0).layers][5]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    at.query_params["layer"] = layer
    at.query_params["channel"] = "4"
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.radio(key="ideal_mode").value == "channel"
    assert at.selectbox(key="ideal_layer").value == layer and at.number_input(key="ideal_channel").value == 4
    assert not at.warning
    assert at.query_params["layer"] == [layer] or at.query_params["layer"] == layer  # the view stays in the link

    # A link with a layer this network does not have opens the default layer (shared links ignore bad values).
    bad = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    bad.run()
    bad.query_params["layer"] = "no.such.layer"
    bad.query_params["channel"] = "0"
    bad.switch_page(PAGE).run()
    assert not bad.exception
    assert bad.selectbox(key="ideal_layer").value in [li.name for li in probe_layers(lite0).layers]


def test_the_curves_write_their_axis_titles_upright():
    """Rotated Hangul reads sideways: the curves' axis titles are horizontal labels above the axes."""
    from explain.ui.ideal import curves

    fig = curves({"prob": [0.1, 0.4], "activation": [1.0, 2.0], "objective": [-1.0, -2.0], "total": [-1.0, -2.0]})
    assert not fig.layout.yaxis.title.text and not fig.layout.yaxis2.title.text
    assert {a.text for a in fig.layout.annotations} >= {"%", "loss"}
