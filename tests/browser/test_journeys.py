"""Journeys a teacher or a student takes, in Chromium against the app started as the README starts it: switch the image
source, the language, the dataset; what the page shows must be what it computed (issue 15)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest

from ..conftest import ROOT
from ..live_app import running_app, settle
from .conftest import assert_no_exception

pytestmark = pytest.mark.browser


def _png(name: str) -> bytes:
    from explain.images import encode_png, sample_image

    return encode_png(sample_image(name))


def _main(tab):
    return tab.get_by_test_id("stMainBlockContainer")


def _upload(tab, hint: str, name: str, data: bytes, mime: str) -> None:
    """Give a file to the page's uploader whose caption mentions `hint` (e.g. "ZIP", "JPG")."""
    uploader = tab.locator('[data-testid="stFileUploader"]').filter(has_text=hint).first
    uploader.locator('input[type="file"]').set_input_files({"name": name, "mimeType": mime, "buffer": data})
    settle(tab)


def _selected(tab, label: str) -> str:
    return tab.get_by_role("combobox", name=label, exact=True).input_value()


def _checked(tab, label: str) -> list[str]:
    radio = tab.locator('[data-testid="stRadio"]').filter(has=tab.locator('[data-testid="stWidgetLabel"]', has_text=label))
    boxes = radio.first.locator("input:checked")
    return [boxes.nth(i).evaluate("e => e.closest('label').innerText") for i in range(boxes.count())]


def test_the_readme_start_has_no_developer_toolbar_and_no_file_watcher(server, page):
    """run.sh + config.toml: nothing to deploy in a classroom, and no watcher over the project folder (it holds .venv)."""
    import tomllib

    page.goto(server)
    page.get_by_role("heading", name="CNN Lens").wait_for()
    settle(page)
    assert page.get_by_role("button", name="Deploy").count() == 0
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["fileWatcherType"] == "none" and config["client"]["toolbarMode"] == "viewer"
    assert "run.sh" in running_app.__doc__  # what the tests and bench/load.py start is what a user starts


def test_a_new_photo_on_grad_cam_starts_from_its_own_class_and_the_layer_box_tells_the_truth(server, page):
    page.goto(f"{server}/Grad-CAM")
    page.locator("h1").first.wait_for()
    settle(page)
    assert "class=" in page.url  # the chosen class of the sample is part of the link
    _main(page).get_by_text("Upload", exact=True).click()
    settle(page)
    _upload(page, "JPG", "coffee.png", _png("coffee"), "image/png")
    page.get_by_text(re.compile(r"^Grad-CAM for ")).first.wait_for()
    settle(page)
    main = _main(page).inner_text()
    assert "Top classes: espresso" in main and "Grad-CAM for espresso" in main, main[:600]
    layer = re.search(r"The map itself \(layer (\S+),", main).group(1)
    assert _selected(page, "Layer") == layer  # the box shows the layer the map was made from
    assert_no_exception(page)


def test_a_zip_with_its_own_split_shows_and_trains_the_advised_strategy(server, page):
    from explain.images import encode_png
    from explain.transfer import demo_dataset

    ds = demo_dataset("textures", per_class=12, size=96)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (image, label) in enumerate(zip(ds.images, ds.labels)):
            zf.writestr(f"data/{'val' if i % 4 == 0 else 'train'}/{ds.classes[label]}/{i}.png", encode_png(image))
    page.goto(f"{server}/Transfer_learning")
    page.locator("h1").first.wait_for()
    settle(page)
    _main(page).get_by_text("Zip file (one folder per class)", exact=True).click()
    settle(page)
    _upload(page, "ZIP", "textures.zip", buf.getvalue(), "application/zip")
    page.get_by_text(re.compile(r"Recommended: ")).first.wait_for()
    settle(page)
    main = _main(page).inner_text()
    assert re.search(r"Recommended: (.+?)\.", main) and "Why the automatic choice does this:" in main
    assert _checked(page, "Strategy") == ["Automatic (advisor)"]  # preselected: the advisor's plan
    assert "Share of each class kept for validation" not in main  # the folders gave the split
    assert_no_exception(page)


@pytest.mark.parametrize("path, last_radio", [("Feature_maps", "Scale"), ("Transfer_learning", "Strategy")])
def test_radios_keep_their_choice_when_the_language_changes(server, page, path, last_radio):
    page.goto(f"{server}/{path}?lang=en")
    page.locator('[data-testid="stRadio"]').filter(has_text=last_radio).first.wait_for()  # the whole page is drawn
    settle(page)
    radios = page.locator('[data-testid="stMain"] [data-testid="stRadio"]')
    before = [radios.nth(i).locator("input:checked").count() for i in range(radios.count())]
    assert before and all(n == 1 for n in before)
    title = page.locator("h1").first.inner_text()
    page.locator('[data-testid="stSidebar"]').get_by_text("한국어").click()
    page.wait_for_function("t => document.querySelector('h1') && document.querySelector('h1').innerText !== t", arg=title)
    settle(page)
    after: list[int] = []
    for _ in range(20):  # the page may still be drawing its lower widgets: look again for up to ~5 s
        after = [radios.nth(i).locator("input:checked").count() for i in range(radios.count())]
        if after == before:
            break
        page.wait_for_timeout(250)
    assert after == before, (before, after)
    assert_no_exception(page)


def test_ideal_images_moves_the_bar_at_once_and_a_stop_before_the_first_preview_keeps_the_image(server, page):
    from ..live_app import main_button, press_slider, set_number

    page.goto(f"{server}/Ideal_images")
    main_button(page, "Make the image").wait_for()
    settle(page)
    page.get_by_text("Advanced settings", exact=True).click()
    set_number(page, "Steps", 300)
    assert press_slider(page, "Preview every N steps", "End") == "50"  # no preview before step 50
    main_button(page, "Make the image").click()
    bar = page.locator('[data-testid="stProgress"]')
    # the bar counts every step, long before the first preview (step 50)
    bar.filter(has_text=re.compile(r"step ([1-9]|[1-3]\d) of 300")).first.wait_for(timeout=60_000)
    main_button(page, "Stop").click()
    stopped = page.locator('[data-testid="stAlertContentWarning"]').filter(has_text=re.compile(r"^Stopped at step \d+ of 300"))
    stopped.first.wait_for()
    settle(page)
    assert_no_exception(page)
    assert int(re.search(r"step (\d+) of 300", stopped.first.inner_text()).group(1)) < 50  # stopped before any preview
    assert page.get_by_role("heading", name="This session's images").count() == 1  # and the image so far is kept


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/cnn_lens_browser_evil_marker",))


def test_a_weights_file_with_code_is_refused_under_its_own_name_in_plain_words(server, page):
    import os
    import pickle

    marker = "/tmp/cnn_lens_browser_evil_marker"
    if os.path.exists(marker):
        os.remove(marker)
    page.goto(f"{server}/?lang=ko")
    page.locator("h1").first.wait_for()
    settle(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.locator('[data-testid="stExpander"]').first.locator("summary").click()
    upload = sidebar.locator('[data-testid="stFileUploader"] input[type="file"]').first
    upload.set_input_files({"name": "선생님 모델.pth", "mimeType": "application/octet-stream", "buffer": pickle.dumps({"w": _Evil()})})
    error = page.locator('[data-testid="stAlertContentError"]')
    error.first.wait_for()
    settle(page)
    text = error.first.inner_text()
    assert "'선생님 모델.pth'" in text and "cnnlens-" not in text  # the user's own file name, not a server temp name
    assert "weights_only" not in text and "Re-running" not in text  # no PyTorch advice to load it unsafely
    assert "읽을 수 없습니다" in text and "Could not" not in text  # all of it in Korean
    assert not os.path.exists(marker)  # nothing in the file ran


_BAR_LABELS = """plots => plots.map(p => ({
    y: Array.from((p._fullData && p._fullData[0] && p._fullData[0].y) || []).map(String),
    drawn: Array.from(p.querySelectorAll("text.bartext")).map(e => e.textContent),
}))"""


def test_every_pipeline_s_count_is_written_on_the_robustness_chart_a_zero_one_too(server, page):
    """Chelsea → golden retriever with the lab's defaults: JPEG 90 undoes it (0/1). A bar of length 0 had no room for
    its text, so that row was blank: a student could not tell "none" from "not checked"."""
    page.goto(f"{server}/Adversarial")
    page.locator("h1").first.wait_for()
    settle(page)
    page.get_by_role("button", name="Attack").click()
    page.get_by_text("Does it hold in other pipelines?").wait_for(timeout=600_000)
    settle(page)
    chart = page.locator(".js-plotly-plot").filter(has_text="views that give the goal")
    for _ in range(50):
        read = chart.evaluate_all(_BAR_LABELS)
        if read and read[0]["drawn"]:
            break
        page.wait_for_timeout(200)
    families, drawn = read[0]["y"], read[0]["drawn"]
    assert len(families) == 5 and len(drawn) == len(families), read
    assert all(re.fullmatch(r"\d+/\d+", text) for text in drawn), drawn
    assert any(text.startswith("0/") for text in drawn), drawn  # the case this test is about happened
    assert_no_exception(page)


def test_a_running_job_draws_its_live_chart_without_plotly(server, page):
    """bench/app.py: a Plotly chart redrawn twice a second during an attack or an ideal image cost the user's browser
    most of a core, on the cores the job needs (the job ran 1.5-2x slower than on the CLI). The live chart is now a few
    kilobytes of inline SVG; Plotly appears only with the finished result."""
    from ..live_app import main_button, press_slider, set_number

    page.goto(f"{server}/Adversarial")
    main_button(page, "Attack").wait_for()
    settle(page)
    set_number(page, "Steps", 200)  # long enough to watch it run
    # ε = 1 grey level and "keep going to 99%": the goal is out of reach, so the attack runs until Stop
    assert press_slider(page, re.compile(r"^ε"), "Home") == "1"
    page.get_by_text("More settings", exact=True).click()
    assert press_slider(page, re.compile(r"^Keep going until"), "End") == "0.99"
    main_button(page, "Attack").click()
    live = page.locator(".cnn-lens-live-chart svg polyline")
    live.first.wait_for(timeout=120_000)
    assert page.locator('[data-testid="stStatusWidget"]').count() == 1  # still running
    assert page.locator(".js-plotly-plot").count() == 0
    points = live.first.get_attribute("points").split()
    assert len(points) >= 1 and all(re.fullmatch(r"-?[\d.]+,-?[\d.]+", p) for p in points)
    # and no CSS transitions while it runs: each progress message would start fades the browser draws frame by
    # frame on the job's cores (stale elements, the status widget, the progress bar)
    transitions = set()
    for _ in range(8):
        transitions |= set(page.evaluate(
            "() => document.getAnimations().filter(a => a instanceof CSSTransition)"
            ".map(a => a.transitionProperty + ' ' + (a.effect.target.getAttribute('data-testid') || a.effect.target.className))"
        ))
        page.wait_for_timeout(250)
    assert not transitions, transitions
    main_button(page, "Stop").click()
    # the attack runs in a fragment: the click ends it from inside, with the results of the steps it took
    page.locator('[data-testid="stAlertContentWarning"]').filter(has_text=re.compile(r"^Stopped at step \d+")).first.wait_for(timeout=120_000)
    settle(page)
    assert_no_exception(page)
    assert page.locator(".cnn-lens-live-chart").count() == 0  # the live view is gone with the job
