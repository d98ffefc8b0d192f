"""The Transfer learning page (lessons/6_Transfer_learning.py) under AppTest."""


def test_transfer_page_trains_and_my_model_serves_other_pages():
    from streamlit.testing.v1 import AppTest

    from ..conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.switch_page("lessons/6_Transfer_learning.py").run()
    assert not at.exception
    at.slider(key="tl_demo_n").set_value(8).run()
    at.number_input(key="tl_epochs").set_value(4).run()
    assert at.radio(key="tl_strategy").value == "extract"  # the advisor's choice for a small, similar set
    at.button(key="tl_train").click().run()
    assert not at.exception
    result = at.session_state["tl_result"]
    assert len(result.history) == 4 and result.val.accuracy >= 0.8
    assert "my model" in at.session_state["custom_backbones"]
    assert any("Validation accuracy" in m.label for m in at.metric)
    assert any(":green[" in m.value for m in at.markdown)
    # its picker lists the new model (AppTest cannot select options drawn with a format_func)
    at.run()
    assert any(o.startswith("my model") for o in at.selectbox(key="backbone").options)
