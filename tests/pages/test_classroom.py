"""Classroom mode: every label in Korean, lessons, shareable links, presenter mode, Korean error messages."""

from __future__ import annotations

import ast
import json
import re
import string
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ..conftest import ROOT
from ..i18n_extract import extract, korean_table

TIMEOUT = 180
HANGUL = re.compile(r"[\uac00-\ud7a3]")
LESSONS = ["classify", "network_overview", "feature_maps", "channel_microscope", "ideal_images", "adversarial", "transfer_learning", "grad_cam"]


def lesson_page_paths() -> list[str]:
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(tg, ast.Name) and tg.id == "LESSONS" for tg in node.targets):
            return [ast.literal_eval(row.elts[0]) for row in node.value.elts]
    raise AssertionError("app.py has no LESSONS list")


def open_app(page: str | None = None, **params: str) -> AppTest:
    """The app as a shared link opens it: query parameters first, then (optionally) one page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------- translations


def test_every_t_string_has_a_korean_entry():
    found = extract()
    assert not found.unresolved, "t() needs the English text itself (no f-strings or computed text):\n" + "\n".join(found.unresolved)
    ko = korean_table()
    missing = {text: where for text, where in found.strings.items() if not ko.get(text)}
    assert not missing, (
        "no Korean in assets/i18n/ko.json for (run `python -m tests.i18n_extract` for a skeleton):\n"
        + "\n".join(f"  {text!r}  ({', '.join(where)})" for text, where in missing.items())
    )
    assert len(found.strings) > 80  # the extractor really reads the pages


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


# Method and device names Korean classes also write in Latin letters.
NAMES_KEPT = {"CPU", "Grad-CAM++", "SmoothGrad", "FGSM", "PGD", "MI-FGSM", "PSNR", "SSIM",
              "XGrad-CAM", "Layer-CAM", "HiRes-CAM", "Score-CAM", "Ablation-CAM", "Eigen-CAM"}


def test_korean_entries_keep_the_format_fields_and_are_korean():
    for english, korean in korean_table().items():
        assert _fields(korean) == _fields(english), english
        if any(ch.isalpha() for ch in english) and english not in NAMES_KEPT:
            assert HANGUL.search(korean), f"not Korean: {english!r} -> {korean!r}"


def test_extractor_resolves_tables_and_reports_computed_text(tmp_path):
    (tmp_path / "explain").mkdir()
    (tmp_path / "explain" / "names.py").write_text('NAMES = {"a": "Alpha label", "b": "Beta label"}\n')
    page = tmp_path / "page.py"
    page.write_text(
        "from explain.names import NAMES\n"
        "ROWS = [('x.py', 'Row title', 'icon'), ('y.py', 'Other title', 'icon')]\n"
        "t('Plain')\n"
        "t({'k': 'From a dict'}[key])\n"
        "badge = 'One' if flag else 'Two'\n"
        "t(badge)\n"
        "t(NAMES[k])\n"
        "for path, title, icon in ROWS:\n"
        "    t(title)\n"
        "t(f'Hello {name}')\n"
    )
    found = extract([page], root=tmp_path)
    assert set(found.strings) == {"Plain", "From a dict", "One", "Two", "Alpha label", "Beta label", "Row title", "Other title"}
    assert len(found.unresolved) == 1 and "f'Hello {name}'" in found.unresolved[0]


def visible_texts(at: AppTest) -> list[str]:
    """Every text a user reads on the page (labels, headings, messages, options), except the language switch."""
    texts = []
    for kind in ("title", "header", "subheader", "caption", "markdown", "info", "success", "warning", "error"):
        texts += [el.value for el in getattr(at, kind)]
    for kind in ("selectbox", "radio", "slider", "toggle", "number_input", "checkbox", "button", "text_input", "multiselect", "select_slider"):
        for widget in getattr(at, kind):
            if widget.key == "lang":
                continue
            texts.append(widget.label)
            if kind == "radio":
                texts += list(widget.options)
    texts += [ex.label for ex in at.expander]
    texts += [tab.label for tab in at.tabs]
    texts += [link.proto.label for link in at.get("page_link")]
    texts += [caption for image in at.get("image") for caption in image.captions]
    return [text for text in texts if text and any(ch.isalpha() for ch in text)]


@pytest.mark.parametrize("page", [None, *lesson_page_paths()], ids=lambda p: "home" if p is None else Path(p).stem)
def test_switching_language_changes_every_visible_string(page):
    english = visible_texts(open_app(page, lang="en"))
    korean = visible_texts(open_app(page, lang="ko"))
    assert len(english) >= 5 and len(korean) == len(english)
    assert not [text for text in english if HANGUL.search(text)]
    assert not [text for text in korean if not HANGUL.search(text)], "left in English in Korean mode"
    assert not set(english) & set(korean)


# ---------------------------------------------------------------- lessons


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_has_an_english_and_a_korean_text(lesson):
    from explain.ui.classroom import lesson_text

    en_title, en_body = lesson_text(lesson, "en")
    ko_title, ko_body = lesson_text(lesson, "ko")
    assert (ROOT / "assets" / "lessons" / f"{lesson}.ko.md").is_file()
    assert en_title and len(en_body) > 400 and not HANGUL.search(en_title + en_body)
    assert HANGUL.search(ko_title) and len(HANGUL.findall(ko_body)) > 200


def test_lesson_panel_is_on_the_page_and_opens_in_presenter_mode():
    at = open_app("lessons/2_Feature_maps.py")
    lesson = next(ex for ex in at.expander if ex.label.startswith("📖"))
    assert "what each layer looks for" in lesson.label and not lesson.proto.expanded
    assert any("receptive field" in md.value for md in lesson.markdown)
    shown = open_app("lessons/2_Feature_maps.py", presenter="1", lang="ko")
    lesson = next(ex for ex in shown.expander if ex.label.startswith("📖"))
    assert "층마다" in lesson.label and lesson.proto.expanded


# ---------------------------------------------------------------- shareable links


def test_a_shared_link_restores_the_feature_maps_view():
    link = {"lang": "ko", "sample": "coffee", "layer": "blocks.2.0", "channel": "5"}
    at = open_app("lessons/2_Feature_maps.py", **link)
    assert at.title[0].value == "특성 맵"
    assert at.selectbox(key="image_sample").value == "coffee"
    assert at.selectbox(key="fm_layer").value == "blocks.2.0"
    assert at.number_input(key="fm_channel").value == 5
    assert at.session_state["image"][0] == "coffee"
    assert {k: at.query_params[k] for k in link} == link | {}  # the URL still names the same view
    assert at.query_params["backbone"] == "efficientnet_lite0"


def test_a_shared_link_to_an_inner_layer_lists_the_inner_layers():
    at = open_app("lessons/2_Feature_maps.py", layer="blocks.2.0.conv_pw", channel="3")
    assert at.toggle(key="fm_main").value is False
    assert at.selectbox(key="fm_layer").value == "blocks.2.0.conv_pw"
    assert at.number_input(key="fm_channel").value == 3


def test_a_bad_link_falls_back_to_defaults():
    at = open_app("lessons/2_Feature_maps.py", layer="no.such.layer", channel="99999", sample="nope", backbone="nope", lang="xx")
    default_layer = at.selectbox(key="fm_layer").value
    assert default_layer != "no.such.layer" and at.selectbox(key="image_sample").value == "chelsea"
    assert at.number_input(key="fm_channel").value < 99999
    assert at.query_params["layer"] == default_layer and at.query_params["lang"] == "en"
    assert at.query_params["backbone"] == "efficientnet_lite0"


def test_the_url_follows_the_widgets_and_page_switches():
    at = open_app("lessons/2_Feature_maps.py")
    at.selectbox(key="fm_layer").set_value("blocks.5.0").run()
    assert at.query_params["layer"] == "blocks.5.0"
    strongest = int(at.query_params["channel"])  # a new layer starts on its strongest channel
    at.number_input(key="fm_channel").set_value(7 if strongest != 7 else 8).run()
    assert at.query_params["channel"] in ("7", "8")
    at.selectbox(key="image_sample").set_value("rocket").run()
    at.switch_page("lessons/1_Classify.py").run()
    assert not at.exception
    assert "layer" not in at.query_params and "channel" not in at.query_params  # they belong to Feature maps
    assert at.query_params["sample"] == "rocket" and at.selectbox(key="image_sample").value == "rocket"


def _class_picker_page():
    from explain.ui.backbones import cached_backbone
    from explain.ui.pickers import class_picker

    class_picker(cached_backbone("efficientnet_lite0"), "Class", key="demo_class", url="class")


def test_class_picker_keeps_the_class_in_the_link():
    at = AppTest.from_function(_class_picker_page, default_timeout=TIMEOUT)
    at.query_params["class"] = "340"
    at.run()
    assert not at.exception and at.selectbox(key="demo_class").value == 340
    at.selectbox(key="demo_class").set_value(281).run()
    assert at.query_params["class"] == "281"


# ---------------------------------------------------------------- presenter mode


def test_presenter_mode_shows_fewer_controls_and_larger_type():
    normal = open_app("lessons/2_Feature_maps.py")
    shown = open_app("lessons/2_Feature_maps.py", presenter="1")
    assert shown.sidebar.toggle(key="presenter").value is True
    for key in ("fm_order", "fm_norm", "fm_count", "fm_cmap", "fm_alpha"):
        assert any(w.key == key for w in normal.get(_kind(key))), key
        assert not any(w.key == key for w in shown.get(_kind(key))), key
    assert any("font-size" in str(el.proto) for el in shown.get("html"))
    assert not any("font-size" in str(el.proto) for el in normal.get("html"))
    classify = open_app("lessons/1_Classify.py", presenter="1")
    assert not any(w.key == "classify_interp" for w in classify.selectbox)
    assert "cat" in classify.success[0].value
    assert "presenter" not in classify.query_params  # a display setting, not part of a shared view


def _kind(key: str) -> str:
    return {"fm_order": "radio", "fm_norm": "radio", "fm_count": "slider", "fm_cmap": "selectbox", "fm_alpha": "slider"}[key]


# ---------------------------------------------------------------- library errors in Korean


def test_common_library_errors_read_in_korean(tmp_path, lite0):
    from explain.errors import LensError
    from explain.featuremaps import channel_grid
    from explain.images import decode_image
    from explain.models import load_model
    from explain.ui.errors import error_text

    bad_weights = tmp_path / "notes.pth"
    bad_weights.write_bytes(b"not a checkpoint")
    attempts = [
        (lambda: decode_image(b"", name="empty.png"), "empty.png"),
        (lambda: decode_image(b"hello, not pixels", name="notes.jpg"), "notes.jpg"),
        (lambda: decode_image((ROOT / "app.py").read_bytes()[:0] + b"\x89PNG\r\n\x1a\n" + b"\0" * 40, name="cut.png"), "cut.png"),
        (lambda: load_model(str(bad_weights)), "notes.pth"),
        (lambda: load_model(str(tmp_path / "missing.pth")), "missing.pth"),
        (lambda: lite0.class_index("no such animal"), "no such animal"),
        (lambda: lite0.class_index("5000"), "5000"),
        (lambda: channel_grid(__import__("torch").zeros(4, 8, 8), [9]), "9"),
    ]
    for call, detail in attempts:
        with pytest.raises(LensError) as caught:
            call()
        korean = error_text(caught.value, "ko")
        assert HANGUL.search(korean) and detail in korean, (str(caught.value), korean)
        assert error_text(caught.value, "en") == str(caught.value)
    assert error_text("Something nobody translated.", "ko") == "Something nobody translated."


def test_every_error_pattern_compiles_and_keeps_its_groups():
    rows = json.loads((ROOT / "assets" / "i18n" / "ko.errors.json").read_text(encoding="utf-8"))
    for row in rows:
        pattern = re.compile(row["pattern"])
        used = set(re.findall(r"\\g<(\w+)>", row["text"]))
        assert used <= set(pattern.groupindex), row["pattern"]
        assert HANGUL.search(row["text"])
