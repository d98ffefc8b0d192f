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
    assert at.radio(key="tl_strategy").value == "auto"  # preselected: the advisor's plan
    info = " ".join(i.value for i in at.info)
    # it measured the textures itself: a frozen backbone already tells them apart, so only a new head is trained
    assert "Recommended: **Feature extractor" in info and "Why the automatic choice does this:" in info and "features put" in info and "192 pixels" in info
    at.button(key="tl_train").click().run()
    assert not at.exception
    result = at.session_state["tl_result"]
    assert result.config.strategy == "extract"
    assert len(result.history) == 4 and result.val.accuracy >= 0.8
    assert "my model" in at.session_state["custom_backbones"]
    assert any("Validation accuracy" in m.label for m in at.metric)
    assert any(":green[" in m.value for m in at.markdown)
    # its picker lists the new model (AppTest cannot select options drawn with a format_func)
    at.run()
    assert any(o.startswith("my model") for o in at.selectbox(key="backbone").options)


def test_a_zip_with_train_and_val_folders_uses_them_and_mixes_the_classes_in_the_grid():
    import io
    import re
    import zipfile

    from streamlit.testing.v1 import AppTest

    from ..conftest import ROOT
    from ..shared import demo_pngs

    pngs = demo_pngs(per_class=8)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for cls, images in pngs.items():
            for i, data in enumerate(images):
                zf.writestr(f"data/{'val' if i < 3 else 'train'}/{cls}/{i}.png", data)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("lessons/6_Transfer_learning.py").run()
    at.radio(key="tl_source").set_value("zip").run()
    at.file_uploader(key="tl_zip").set_value(("hands.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception
    assert not [s for s in at.slider if s.key == "tl_val_frac"]  # the folders fixed the split: no share to choose
    assert any("the folders gave the split" in c.value for c in at.caption)
    assert at.radio(key="tl_strategy").value == "auto"
    at.number_input(key="tl_epochs").set_value(2).run()
    at.button(key="tl_train").click().run()
    assert not at.exception
    tiles = [m.value for m in at.markdown if re.match(r":(green|red)\[\*\*", m.value)]
    wrong_truths = iter(c.value.removeprefix("true: ") for c in at.caption if c.value.startswith("true: "))
    # a tile shows the predicted class; a red one is followed by its true class
    truths = [next(wrong_truths) if v.startswith(":red") else re.search(r"\*\*(.+?)\*\*", v).group(1) for v in tiles]
    assert len(tiles) == 9 and len(set(truths[:3])) == 3  # the grid starts with one photo of each class
