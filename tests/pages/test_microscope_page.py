"""Channel microscope (lessons/2_Channel_microscope.py) under AppTest: built-in index, shared links, the links from
Feature maps and the Network overview, presenter mode in Korean, "my model", the ideal image."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from streamlit.testing.v1 import AppTest
from torch import nn

from ..conftest import ROOT
from ..shared import zip_of
from .apptest import open_app as open_page

TIMEOUT = 300
MICROSCOPE = "lessons/2_Channel_microscope.py"


@pytest.fixture(scope="module", autouse=True)
def index_cache(tmp_path_factory):
    """Every index of this module goes to a fresh cache folder, never to the user's ~/.cache."""
    from explain.microscope.store import INDEX_DIR_ENV

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("index_cache")
    mp.setenv(INDEX_DIR_ENV, str(folder))
    yield folder
    mp.undo()


def open_app(page: str, session: dict | None = None, **params: str) -> AppTest:
    return open_page(page, session, timeout=TIMEOUT, **params)


def _captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def _expected(backbone, layer: str, channel: int, k: int = 9) -> list[str]:
    from explain.microscope import find_index, query_channel, sample_images

    index = find_index(backbone, sample_images())
    assert index is not None  # the page built it into the shared cache
    return [f"#{p.rank} · {p.value:.3f} · {p.file} · box " for p in query_channel(index, layer, channel, k).top]


def test_a_shared_link_builds_the_built_in_index_once_and_shows_the_channels_top_patches(lite0, index_cache):
    at = open_app(MICROSCOPE, layer="blocks.3.0", channel="5")
    assert at.title[0].value == "Channel microscope"
    assert at.selectbox(key="mic_layer").value == "blocks.3.0" and at.number_input(key="mic_channel").value == 5
    assert at.query_params["layer"] == "blocks.3.0" and at.query_params["channel"] == "5"
    assert len(list(index_cache.iterdir())) == 1  # built into the shared cache
    shown = [c for c in _captions(at) if c.startswith("#")]
    expected = _expected(lite0, "blocks.3.0", 5)
    assert len(shown) == 9 and all(s.startswith(e) for s, e in zip(shown, expected))
    assert any("160 photos of scikit-image's sample photos and crops of them, indexed for efficientnet_lite0" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 1  # the histogram
    at.number_input(key="mic_channel").set_value(6).run()
    assert at.query_params["channel"] == "6"
    shown = [c for c in _captions(at) if c.startswith("#")]
    assert all(s.startswith(e) for s, e in zip(shown, _expected(lite0, "blocks.3.0", 6)))
    at.selectbox(key="mic_layer").set_value("conv_stem").run()
    assert at.query_params["layer"] == "conv_stem" and "box 3×3" in [c for c in _captions(at) if c.startswith("#")][0]
    again = open_app(MICROSCOPE)  # a second session finds the index on disk
    assert not any(p.value > 0 for p in again.get("progress")) and len(list(index_cache.iterdir())) == 1


def test_feature_maps_and_the_overview_open_a_channel_in_the_microscope():
    at = open_app("lessons/2_Feature_maps.py", layer="blocks.2.1", channel="7")
    at.button(key="fm_to_microscope").click().run()
    assert not at.exception and at.title[0].value == "Channel microscope"
    assert at.query_params["layer"] == "blocks.2.1" and at.query_params["channel"] == "7"
    assert at.selectbox(key="mic_layer").value == "blocks.2.1" and at.number_input(key="mic_channel").value == 7
    ov = open_app("lessons/1_Network_overview.py")
    pick = ov.selectbox(key="ov_pick")
    pick.set_value(6 * 5 + 1).run()  # the sixth column's second thumbnail
    layer, channel = pick.format_func(6 * 5 + 1).split(" · channel ")
    ov.button(key="ov_microscope").click().run()
    assert not ov.exception and ov.title[0].value == "Channel microscope"
    assert ov.query_params["layer"] == layer and ov.query_params["channel"] == channel


def test_presenter_mode_in_korean_hides_the_knobs():
    at = open_app(MICROSCOPE, presenter="1", lang="ko", layer="blocks.5.0", channel="3")
    assert at.title[0].value == "채널 현미경"
    assert not any(w.key in ("mic_top", "mic_source", "mic_context") for w in [*at.slider, *at.radio, *at.toggle])
    assert len([c for c in _captions(at) if c.startswith("#")]) == 9
    assert at.selectbox(key="mic_layer").value == "blocks.5.0"


def test_my_model_gets_its_own_index(lite0, index_cache):
    from explain.models import Backbone

    model = copy.deepcopy(lite0.model)
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    model.blocks[6][0].bn3.bias.data += 0.25  # fine-tuned: the last block's numbers change
    mine = Backbone("my model", model.eval(), ["ants", "bees"], lite0.preprocess, lite0.device, "trained", base="efficientnet_lite0")
    session = {"custom_backbones": {"my model": mine}, "backbone_pending": "my model"}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(layer="blocks.6.0", channel="2")
    for key, value in session.items():
        at.session_state[key] = value
    at.switch_page(MICROSCOPE).run()
    assert not at.exception, at.exception
    assert at.session_state["backbone"] == "my model"
    assert any("indexed for my model" in c.value for c in at.caption)
    assert len(list(index_cache.iterdir())) == 2  # not the index of the ImageNet weights
    shown = [c for c in _captions(at) if c.startswith("#")]
    assert all(s.startswith(e) for s, e in zip(shown, _expected(mine, "blocks.6.0", 2)))
    assert _expected(mine, "blocks.6.0", 2) != _expected(lite0, "blocks.6.0", 2)  # the values moved with the weights


def test_the_ideal_image_of_the_channel_is_made_on_a_click(monkeypatch):
    import explain.ui.microscope as ui
    from explain.synthesis import preset

    monkeypatch.setattr(ui, "preset", lambda name: replace(preset(name), steps=3, size=96))  # a short run
    at = open_app(MICROSCOPE, layer="blocks.4.0", channel="10")
    assert any("No ideal image of this channel yet" in c.value for c in at.caption)
    at.button(key="mic_ideal_run").click().run()
    assert not at.exception
    ideal = [c for c in _captions(at) if c.startswith("ideal image of blocks.4.0 channel 10")]
    assert len(ideal) == 1 and "3 steps" in ideal[0]


def test_too_many_photos_are_refused_before_reading_and_the_message_reads_in_korean(monkeypatch, chelsea):
    from explain.errors import LensError
    from explain.images import encode_png
    from explain.microscope import sets, zip_images
    from explain.ui.errors import error_text

    monkeypatch.setattr(sets, "MAX_INDEX_IMAGES", 2)
    png = encode_png(chelsea[:64, :64])
    with pytest.raises(LensError, match="more than 2 images") as caught:
        zip_images(zip_of({"a.png": png, "b.png": png, "c/d.png": png}), "many.zip")
    assert "MAX_INDEX_IMAGES" in error_text(caught.value, "ko") and "사진" in error_text(caught.value, "ko")
    assert "사진을 찾지 못했습니다" in error_text(LensError(_no_images_message()), "ko")


def _no_images_message() -> str:
    from explain.errors import LensError
    from explain.microscope import zip_images

    with pytest.raises(LensError) as caught:
        zip_images(zip_of({"a.txt": b"x"}), "empty.zip")
    return str(caught.value)


def test_the_transfer_learning_dataset_is_indexed_on_a_click(lite0, index_cache):
    from explain.microscope import find_index, memory_images, query_channel
    from explain.transfer import demo_dataset

    dataset = demo_dataset("textures", per_class=8, size=96)
    at = open_app(MICROSCOPE, session={"tl_datasets": {("demo", "x"): dataset}}, layer="blocks.2.0", channel="4")
    assert at.radio(key="mic_source").options == ["Sample photos and crops (built in)", "A zip of photos", "The Transfer learning dataset (24 photos)"]
    at.radio(key="mic_source").set_value("transfer").run()
    assert any("24 photos, not indexed yet for efficientnet_lite0" in i.value for i in at.info)
    assert not [c for c in _captions(at) if c.startswith("#")]  # nothing is built without the click
    at.button(key="mic_build").click().run()
    assert not at.exception and not at.info
    index = find_index(lite0, memory_images("transfer", dataset.images, dataset.names))
    expected = [f"#{p.rank} · {p.value:.3f} · {p.file} · box " for p in query_channel(index, "blocks.2.0", 4, 9).top]
    shown = [c for c in _captions(at) if c.startswith("#")]
    assert len(shown) == 9 and all(s.startswith(e) for s, e in zip(shown, expected))
    assert shown[0].split(" · ")[2].split("/")[0] in dataset.classes  # named by the dataset's files
