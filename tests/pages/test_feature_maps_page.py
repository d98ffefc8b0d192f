"""Feature maps and Classify tables in Korean: headers and cell words a student reads are translated (issue 15, item 9d)."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from ..conftest import ROOT

TIMEOUT = 180
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _korean(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params["lang"] = "ko"
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_classify_tensor_statistics_headers_are_korean():
    at = _korean("lessons/1_Classify.py")
    table = at.dataframe[0].value
    assert len(table) == 3 and list(table.iloc[:, 0]) == ["R", "G", "B"]
    assert all(HANGUL.search(str(name)) for name in table.columns), list(table.columns)


def test_model_summary_says_trainable_in_korean():
    at = _korean("lessons/2_Feature_maps.py")
    summary = next(df.value for df in at.dataframe if "학습 가능" in df.value.columns)
    words = {w for w in summary["학습 가능"] if w}
    assert words and all(HANGUL.search(w) for w in words), words


def test_preprocessing_pictures_keep_their_true_relative_widths_unless_a_photo_is_huge():
    from explain.ui.plots import true_scale_widths

    assert true_scale_widths([451, 385, 224]) == [451, 385, 224]  # Chelsea: drawn as they are
    assert true_scale_widths([4032, 341, 224]) == [672, 341, 224]  # a phone photo: capped, the crop stays visible
