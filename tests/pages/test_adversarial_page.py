"""The Adversarial page (lessons/4_Adversarial.py) under AppTest."""

from ..conftest import GOLDEN_RETRIEVER


def test_adversarial_page_fools_the_network_and_offers_the_png():
    from streamlit.testing.v1 import AppTest

    from ..conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240).run()
    at.switch_page("lessons/4_Adversarial.py").run()
    assert not at.exception
    assert at.selectbox(key="adv_target").value == GOLDEN_RETRIEVER  # chelsea is a cat, so the default goal is a dog
    at.button(key="adv_run").click().run()
    assert not at.exception
    key, result = at.session_state["adv_result"]
    assert result.success and result.after[0].index == GOLDEN_RETRIEVER
    assert any("golden retriever" in s.value for s in at.success)
    assert any("amplified ×" in str(img.proto) for img in at.get("image"))
    # the PNG judged in other pipelines' views, in the numbers the library counted
    robust = result.robust
    assert robust is not None and robust.views["shifts"] == 25
    said = f"It fools the network in {robust.fooled['shifts']}/25 shifted views and in {robust.fooled['resize']}/8 resized ones."
    assert any(said in c.value for c in at.caption)
    at.selectbox(key="adv_second").set_value("efficientnet_lite1")
    at.button(key="adv_check").click().run()
    assert not at.exception and at.session_state["adv_transfer"][1] == "efficientnet_lite1"
    verdict = at.session_state["adv_transfer"][2]
    assert verdict.fooled == (verdict.after[0].index == GOLDEN_RETRIEVER)  # targeted: fooled means it says the target


def test_stop_ends_an_attack_and_the_page_says_so():
    from streamlit.testing.v1 import AppTest

    from ..conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=240).run()
    at.switch_page("lessons/4_Adversarial.py").run()
    at.session_state["adv_stop"] = True  # what the Stop button's click sets while an attack runs
    at.button(key="adv_run").click().run()
    assert not at.exception
    _, result = at.session_state["adv_result"]
    assert result.steps_used == 0 and not result.success  # stopped before the first step: the photo as it was
    assert any("Stopped at step 0" in w.value for w in at.warning)
    assert at.session_state["adv_stop"] is False
