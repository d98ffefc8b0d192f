"""End-to-end: the real app (`streamlit run`) in headless Chromium, driven by Playwright.

One server for the whole module. Every page listed in app.py's LESSONS is visited, its main action done
(ACTIONS below, keyed by the page's URL path) and a screenshot saved to assets/screenshots/<page>.png
for the README. Chromium is Debian's (`scripts/setup_chromium.sh`); without it these tests skip.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import ROOT
from ..live_app import (
    choose,
    main_button,
    make_ideal_image,
    press_slider,
    run_attack,
    set_number,
    settle,
    train_demo_model,
)
from .conftest import assert_no_exception

pytestmark = pytest.mark.browser

SHOTS = ROOT / "assets" / "screenshots"


def lesson_pages() -> list[str]:
    """URL paths of the pages in app.py's LESSONS ("lessons/2_Feature_maps.py" is served at /Feature_maps)."""
    tree = ast.parse((ROOT / "app.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(tg, ast.Name) and tg.id == "LESSONS" for tg in node.targets):
            paths = [ast.literal_eval(row.elts[0]) for row in node.value.elts]
            return [re.sub(r"^\d+_", "", Path(p).stem) for p in paths]
    raise AssertionError("app.py has no LESSONS list")


def shoot(tab, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    path = SHOTS / f"{name}.png"
    tab.screenshot(path=str(path))
    # 256 colours keep the README light (a channel grid is ~1 MB in full colour, ~1/3 of that here).
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    small.save(path, optimize=True)
    assert path.stat().st_size > 10_000  # a real rendering, not a blank page
    return path


# ---------------------------------------------------------------- each page's main action


def classify_action(tab) -> None:
    result = tab.locator('[data-testid="stAlertContentSuccess"]')
    result.filter(has_text="The network says").wait_for()
    assert "cat" in result.inner_text()  # Chelsea the cat, the default sample
    choose(tab, "Sample", "A cup of coffee")
    result.filter(has_text="espresso").wait_for()
    settle(tab)
    assert "sample=coffee" in tab.url


def feature_maps_action(tab) -> None:
    tab.get_by_text(re.compile(r"channels \(row by row")).first.wait_for()
    choose(tab, "Layer", "4. blocks.1.0")
    tab.get_by_text(re.compile(r"^blocks\.1\.0: \d+ of 24 channels")).first.wait_for()
    settle(tab)
    assert "layer=blocks.1.0" in tab.url  # the view is now a shareable link


def ideal_action(tab) -> None:
    done = make_ideal_image(tab)
    assert done["result"].startswith("Result: ") and done["held_out_rank"] is not None


def attack_action(tab) -> None:
    done = run_attack(tab)
    assert done["correct"], done["result"]  # the default attack on Chelsea fools the network, judged on the PNG
    # the verdict is drawn before the pictures and numbers under it: wait for them, or the screenshot misses them
    tab.get_by_text("Adversarial image (what you download)").wait_for()
    tab.locator('[data-testid="stMetric"]').filter(has_text="SSIM").wait_for()
    settle(tab)


def transfer_action(tab) -> None:
    done = train_demo_model(tab)
    assert done["val_acc"] > 0.6, done["result"]  # well above chance on the built-in demo set
    settle(tab)


def microscope_action(tab) -> None:
    tab.locator('[data-testid="stImage"]').filter(has_text=re.compile(r"^#9 · ")).first.wait_for()  # the built-in index, built on the first visit
    settle(tab)
    assert "layer=" in tab.url and "channel=0" in tab.url


ACTIONS: dict[str, Callable] = {
    "Classify": classify_action,
    "Feature_maps": feature_maps_action,
    "Channel_microscope": microscope_action,
    "Ideal_images": ideal_action,
    "Adversarial": attack_action,
    "Transfer_learning": transfer_action,
}


def test_home_page(server, page):
    page.goto(server)
    page.get_by_role("heading", name="CNN Lens").wait_for()
    settle(page)
    assert_no_exception(page)
    for name in lesson_pages():
        assert page.locator(f'a[href$="/{name}"]').count() >= 1, f"no link to {name}"
    shoot(page, "home")


@pytest.mark.parametrize("name", lesson_pages())
def test_lesson_page(server, page, name):
    page.goto(f"{server}/{name}")
    page.locator("h1").first.wait_for()
    settle(page)
    assert_no_exception(page)
    if name in ACTIONS:
        ACTIONS[name](page)
        assert_no_exception(page)
    shoot(page, name.lower())


def test_shared_link_restores_the_view_in_korean(server, page):
    page.goto(f"{server}/Feature_maps?lang=ko&sample=coffee&layer=blocks.2.0&channel=5")
    page.get_by_role("heading", name="특성 맵").first.wait_for()
    page.get_by_text(re.compile(r"^blocks\.2\.0: 채널 40개 중")).first.wait_for()
    settle(page)
    assert_no_exception(page)
    assert page.get_by_text("사진 위에 겹친 채널 5", exact=True).count() == 1
    channel = page.locator('[data-testid="stNumberInput"] input').first
    assert channel.input_value() == "5"
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "분류" in nav and "특성 맵" in nav
    for param in ("lang=ko", "sample=coffee", "layer=blocks.2.0", "channel=5"):
        assert param in page.url


# ---------------------------------------------------------------- Stop in a real browser
# A click while a job runs reruns the page and ends the running script mid-job; the next run salvages what the
# job kept (explain/ui/jobs.run_job). AppTest cannot click in the middle of a run, so only these tests see it.


def alert(tab, kind: str, text):
    """The `kind` alerts (Success, Info, Warning, Error) whose text matches `text` (a string or a pattern)."""
    return tab.locator(f'[data-testid="stAlertContent{kind}"]').filter(has_text=text)


def test_stop_keeps_the_ideal_image_so_far(server, page):
    page.goto(f"{server}/Ideal_images")
    main_button(page, "Make the image").wait_for()
    settle(page)
    page.get_by_text("Advanced settings", exact=True).click()
    set_number(page, "Steps", 300)
    assert press_slider(page, "Preview every N steps", "Home", "ArrowRight") == "2"
    main_button(page, "Make the image").click()
    live_preview = page.locator('[data-testid="stImage"]').filter(has_text=re.compile(r" · step \d+ · "))
    live_preview.first.wait_for()
    main_button(page, "Stop").click()

    stopped = alert(page, "Warning", re.compile(r"^Stopped at step \d+ of 300: this is the image so far"))
    stopped.first.wait_for()
    settle(page)
    assert_no_exception(page)
    k = int(re.search(r"step (\d+) of 300", stopped.first.inner_text()).group(1))
    assert 1 <= k < 300
    assert page.get_by_role("heading", name="This session's images").count() == 1
    gallery = page.locator('[data-testid="stImage"]').filter(has_text=f"stopped at step {k} of 300")
    assert gallery.count() == 2  # the result and its card in the gallery
    assert main_button(page, "Download PNG").count() == 1

    # the Stop must not reach the next job: a short run finishes as a whole
    set_number(page, "Steps", 6)
    main_button(page, "Make the image").click()
    page.locator('[data-testid="stImage"]').filter(has_text=re.compile(r" · 6 steps in [\d.]+ s")).first.wait_for()
    settle(page)
    assert_no_exception(page)
    assert alert(page, "Warning", "Stopped at step").count() == 0
    assert main_button(page, "Download PNG").count() == 2


def test_stop_ends_an_attack_and_the_next_one_runs(server, page):
    page.goto(f"{server}/Adversarial")
    main_button(page, "Attack").wait_for()
    settle(page)
    # ε = 1 grey level and "keep going to 99%": the goal is out of reach, so the attack runs all its steps
    set_number(page, "Steps", 1000)
    assert press_slider(page, re.compile(r"^ε"), "Home") == "1"
    page.get_by_text("More settings", exact=True).click()
    assert press_slider(page, re.compile(r"^Keep going until"), "End") == "0.99"
    main_button(page, "Attack").click()
    page.locator('[data-testid="stProgress"]').filter(has_text=re.compile(r"step \d+/\d+")).first.wait_for()
    main_button(page, "Stop").click()

    interrupted = alert(page, "Info", "The attack was stopped before it finished")
    finished = page.get_by_text("Adversarial image (what you download)")  # the attack ended before the click landed
    interrupted.or_(finished).first.wait_for()
    settle(page)
    assert_no_exception(page)
    if interrupted.count():
        assert alert(page, "Info", "Choose a goal and press Attack").count() == 1  # no result was kept

    # the defaults again (ε 2, no confidence, 10 steps): this attack runs to its end and fools the network
    set_number(page, "Steps", 10)
    assert press_slider(page, re.compile(r"^ε"), "Home", "ArrowRight") == "2"
    assert press_slider(page, re.compile(r"^Keep going until"), "Home") == "0.00"
    main_button(page, "Attack").click()
    alert(page, "Success", re.compile(r"^Fooled\.")).first.wait_for()
    settle(page)
    assert_no_exception(page)
    assert alert(page, "Info", "The attack was stopped").count() == 0
    assert alert(page, "Warning", "Stopped at step").count() == 0


def _frame_text(payload) -> str:
    return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload


def test_an_attack_click_reruns_only_the_attack_and_its_result(server, page):
    """While an attack runs, the browser shares the cores with it: pressing Attack must not make the server re-send
    (and the browser redraw) the whole page, the settings and the sidebar above the button included."""
    setting = "ε: the most any pixel may change"
    received: list = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(_frame_text(payload))))
    page.goto(f"{server}/Adversarial")
    main_button(page, "Attack").wait_for()
    settle(page)
    assert any(setting in text for text in received)  # the page's first run sends the settings: the check can see them
    received.clear()
    main_button(page, "Attack").click()
    alert(page, "Success", re.compile(r"^Fooled\.")).first.wait_for()
    settle(page)
    assert_no_exception(page)
    assert any("Adversarial image (what you download)" in text for text in received)
    assert not any(setting in text for text in received), "pressing Attack re-sent the settings above it: the whole page reran"
    # the settings are still on the page and still act: a new ε reruns the page and marks the result as outdated
    assert press_slider(page, re.compile(r"^ε"), "Home", "ArrowRight", "ArrowRight") == "3"
    settle(page)
    page.get_by_text("These results are for earlier settings or another photo").wait_for()


def test_stop_keeps_the_model_trained_so_far(server, page):
    page.goto(f"{server}/Transfer_learning")
    main_button(page, "Train").wait_for()
    settle(page)
    set_number(page, "Epochs", 60)
    # with augmentation every epoch runs the frozen part again (seconds, not milliseconds): time to click Stop
    augmentation = page.get_by_role("switch", name="Augmentation", exact=True)
    augmentation.locator("xpath=ancestor::label").click()
    settle(page)
    assert augmentation.is_checked()
    main_button(page, "Train").click()
    page.locator('[data-testid="stProgress"]').filter(has_text=re.compile(r"^Epoch ([2-9]|\d\d+) ")).first.wait_for()
    main_button(page, "Stop").click()

    stopped = alert(page, "Warning", re.compile(r"^Training was stopped after \d+ epoch"))
    stopped.first.wait_for()
    settle(page)
    assert_no_exception(page)
    epochs = int(re.search(r"after (\d+) epoch", stopped.first.inner_text()).group(1))
    assert 1 <= epochs < 60
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Validation accuracy")
    value = metric.first.locator('[data-testid="stMetricValue"]').inner_text()
    assert 0 <= float(value.strip().rstrip("%")) <= 100
    assert page.get_by_role("heading", name="6. My model").count() == 1  # the stopped model is usable
