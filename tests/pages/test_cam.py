"""Class maps in the app: the Grad-CAM page, Classify's "why" panel and the explain.ui.cam widgets, under AppTest."""

from __future__ import annotations

from ..conftest import ROOT


def _captions(at) -> list[str]:
    return [img.caption for el in at.get("image") for img in el.proto.imgs]


def test_gradcam_page_and_classify_why_panel():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180).run()
    at.switch_page("lessons/5_Grad-CAM.py").run()
    assert not at.exception
    assert any("Grad-CAM for" in c for c in _captions(at))
    assert at.selectbox(key="gc_layer").value == "bn2"
    at.selectbox(key="gc_method").set_value("gradcampp").run()
    assert not at.exception
    at.selectbox(key="gc_target").set_value(281).run()
    assert not at.exception
    assert any("Grad-CAM++ for tabby" in c for c in _captions(at))

    at.switch_page("lessons/1_Classify.py").run()
    assert not at.exception
    why = [c for c in _captions(at) if c.endswith("%") and " · " in c]  # "tabby (281) · 17.3%"
    assert len(why) == 3  # one map per top-3 class


def _widgets_script():
    import copy

    import streamlit as st
    import torch
    from torch import nn

    from explain.images import prepare, sample_image
    from explain.models import Backbone
    from explain.ui.backbones import cached_backbone
    from explain.ui.cam import CamSettings, cam_gallery, cam_panel

    base = cached_backbone("efficientnet_lite0")
    model = copy.deepcopy(base.model)
    torch.manual_seed(0)
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    mine = Backbone("my_model", model.eval(), ["ants", "bees"], base.preprocess, base.device, "trained")
    images = [prepare(sample_image(s), mine.preprocess).tensor for s in ("chelsea", "coffee")]
    with torch.no_grad():  # what the gallery must pick for the image without a target: the model's own top-1
        top1 = int(mine.logits(images[1]).argmax())
    st.session_state["coffee_top1"] = f"{mine.categories[top1]} ({top1})"
    cam_gallery(mine, images, targets=["bees", None], captions=["right", "wrong"], key="gallery", columns=2)
    cam_panel(base, sample_image("chelsea"), key="panel", settings=CamSettings(method="gradcampp"))


def test_cam_widgets_work_for_own_classes_and_tensors():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_widgets_script, default_timeout=180).run()
    assert not at.exception
    captions = _captions(at)
    assert captions[0].startswith("right · bees (1) · ")
    assert captions[1].startswith(f"wrong · {at.session_state['coffee_top1']} · ")
    assert len([c for c in captions if not c.startswith(("right", "wrong"))]) == 3  # the panel: top-3 classes
    assert at.selectbox(key="gallery_layer").value == "bn2"


def test_trust_panel_and_layer_sweep_in_korean_and_for_my_model():
    """The "Can I trust this map?" panel: one click gives the headline, the table and the sanity strips; then the sweep."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params.update({"lang": "ko"})
    at.run()
    at.switch_page("lessons/5_Grad-CAM.py").run()
    assert not at.exception
    assert at.multiselect(key="gc_trust_methods").value == ["gradcam"]
    assert at.toggle(key="gc_trust_road").value  # ROAD is on: a multigrid solve makes it about a second per method
    at.button(key="gc_trust_start").click().run()
    assert not at.exception
    texts = [m.value for m in at.markdown]
    assert any("무작위 맵은" in x for x in texts)  # "a random map needs …" in Korean
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    road = [c for c in table.columns if "ROAD" in c][0]
    assert all(v not in ("–", None) for v in table[road])  # every row, the random map's too, has its ROAD score
    strips = [c for c in _captions(at) if "SSIM" in c]
    assert len(strips) == 10  # one map per randomised block of EfficientNet-Lite0
    at.button(key="gc_sweep_start").click().run()
    assert not at.exception
    assert len([c for c in _captions(at) if c.startswith("bn2 · ")]) == 1


def _my_model_trust_script():
    import copy

    import streamlit as st
    import torch
    from torch import nn

    from explain.images import prepare, sample_image
    from explain.models import Backbone
    from explain.ui.backbones import cached_backbone
    from explain.ui.cam import CamSettings
    from explain.ui.trust import trust_panel

    base = cached_backbone("efficientnet_lite0")
    model = copy.deepcopy(base.model)
    torch.manual_seed(0)
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    mine = Backbone("my_model", model.eval(), ["ants", "bees"], base.preprocess, base.device, "trained", base="efficientnet_lite0")
    prepared = prepare(sample_image("chelsea"), mine.preprocess)
    st.session_state.setdefault("t_road", False)
    trust_panel(mine, prepared.tensor, prepared.cropped, 1, CamSettings(method="gradcampp"), key="t")


def test_trust_panel_for_my_model():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_my_model_trust_script, default_timeout=600).run()
    assert not at.exception
    at.button(key="t_start").click().run()
    assert not at.exception
    assert any("bees" in m.value and "random map needs" in m.value for m in at.markdown)
    assert any("ants (a random class)" in c for c in _captions(at))


def _slow_cam_script():
    import streamlit as st
    import torch

    from explain.images import prepare, sample_image
    from explain.ui.backbones import cached_backbone
    from explain.ui.cam import CamSettings, slow_cam

    backbone = cached_backbone("efficientnet_lite0")
    x = torch.nn.functional.interpolate(prepare(sample_image("chelsea"), backbone.preprocess).tensor, size=(96, 96), mode="area")
    result = slow_cam(backbone, x, [281], CamSettings(method="occlusion"), key="s")
    st.session_state["shown"] = None if result is None else (result.stopped, float(result.maps.max()))


def test_slow_methods_run_as_a_job_with_a_button_progress_and_stop():
    """Occlusion on the Grad-CAM page's widget: nothing runs before the click; Stop keeps a partial map; then the whole one."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_slow_cam_script, default_timeout=300).run()
    assert not at.exception and at.session_state["shown"] is None
    assert any("press the button" in i.value for i in at.info)
    at.session_state["s_stop"] = True  # what the Stop button sets while the job runs
    at.button(key="s_start").click().run()
    assert not at.exception
    stopped, peak = at.session_state["shown"]
    assert stopped and peak > 0 and any("Stopped" in w.value for w in at.warning)
    at.button(key="s_start").click().run()
    assert not at.exception and at.session_state["shown"][0] is False
    at.run()  # the whole map is kept: a rerun shows it without the button
    assert at.session_state["shown"][0] is False and not any(b.key == "s_start" for b in at.button)
