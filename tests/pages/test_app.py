"""Every page runs under AppTest without an exception and shows its result."""

import pytest
from streamlit.testing.v1 import AppTest

from ..conftest import ROOT

TIMEOUT = 180


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    return at


def test_home_has_the_lesson_map_and_sidebar(app):
    assert app.title[0].value == "CNN Lens"
    assert app.sidebar.selectbox[0].value == "efficientnet_lite0"


def test_classify_page_shows_a_cat(app):
    app.switch_page("lessons/1_Classify.py").run()
    assert not app.exception
    assert "cat" in app.success[0].value
    app.selectbox(key="classify_interp").set_value("nearest").run()
    assert not app.exception and "cat" in app.success[0].value


def _grid_caption(app: AppTest) -> str:
    for img in app.get("image"):
        text = str(img.proto)
        if "channels (row by row" in text:
            return text
    raise AssertionError("no grid image on the page")


def test_feature_maps_layer_switch_changes_the_grid(app):
    app.switch_page("lessons/2_Feature_maps.py").run()
    assert not app.exception
    recordings = app.session_state["recordings"]
    (_, recording), = recordings.values()
    before = _grid_caption(app)
    layer = app.selectbox(key="fm_layer")
    new = next(name for name in layer.options if name != layer.value)
    layer.set_value(new).run()
    assert not app.exception
    after = _grid_caption(app)
    layer_name = new.split(". ", 1)[1].split(" · ")[0]  # options read "1. conv_stem · Conv2dSame · …"
    assert after != before and f"{layer_name}:" in after
    assert app.session_state["recordings"][next(iter(recordings))][1] is recording  # recorded once, re-used


def _upload_weights(data: bytes) -> AppTest:
    """The home page with a weights file given to the sidebar's uploader."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    at.file_uploader(key="weights_upload").set_value(("mine.pth", data, "application/octet-stream")).run()
    return at


def test_uploaded_weights_file_becomes_a_backbone_of_this_session(lite0, tmp_path):
    import torch

    path = tmp_path / "mine.pth"
    torch.save(lite0.model.state_dict(), path)
    at = _upload_weights(path.read_bytes())
    assert not at.exception and not at.error
    picker = at.sidebar.selectbox[0]
    assert picker.value == "mine.pth (efficientnet_lite0)"
    assert "mine.pth (efficientnet_lite0) · 🟣 file" in picker.options
    assert at.session_state["custom_backbones"][picker.value].source == "file"

    bad = _upload_weights(b"not weights")
    assert not bad.exception and "Could not read weights file" in bad.error[0].value
    assert bad.sidebar.selectbox[0].value == "efficientnet_lite0"


def test_feature_maps_page_shows_the_model_summary(app):
    app.switch_page("lessons/2_Feature_maps.py").run()
    assert not app.exception
    totals = [m.value for m in app.markdown if "Total parameters" in m.value]
    assert totals and "4,652,008" in totals[0]


def test_the_readme_start_collects_no_garbage_after_every_run():
    """config.toml: Streamlit's forced gc.collect() after each run cost 0.25-0.65 s per click with a network loaded."""
    import tomllib
    from streamlit import config

    toml = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert toml["runner"]["postScriptGC"] is False
    assert config._config_options_template["runner.postScriptGC"].default_val is True  # Streamlit's default is to collect: the setting matters
