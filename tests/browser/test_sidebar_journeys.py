"""The sidebar as a teacher and students live it, in Chromium against the app started as the README starts it:
a backbone whose weights cannot come (no internet), presenter mode on a projector, a model trained here (issue 15
items 7 and 8)."""

from __future__ import annotations

import re

import pytest

from ..lib.test_downloads import SilentServer
from ..live_app import choose, running_app, settle, train_demo_model
from .conftest import START_TIMEOUT_S, assert_no_exception

pytestmark = pytest.mark.browser

NO_WEIGHTS = "Weights for 'vgg16' are not on this machine and could not be downloaded"
NO_WEIGHTS_KO = "'vgg16'의 가중치가 이 컴퓨터에 없고"
SIDEBAR_NOTE = "The weights of this network are not on this machine"
ANSWER_WITHIN_MS = 60_000  # the library gives up on a silent network within seconds; before, a page waited forever

# Text the browser shows cut: an <input> (a select box's value) whose text is wider than its box, or any element that
# ends its text in an ellipsis because it does not fit (metric values, navigation links).
CUT_TEXT = """(root) => {
  const cut = [];
  const ctx = document.createElement('canvas').getContext('2d');
  for (const input of root.querySelectorAll('input[role="combobox"]')) {
    const cs = getComputedStyle(input);
    ctx.font = cs.font;
    const room = input.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    if (input.value && ctx.measureText(input.value).width > room) cut.push(input.value);
  }
  for (const el of root.querySelectorAll('*')) {
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).textOverflow === 'ellipsis') {
      cut.push(el.innerText);
    }
  }
  return cut;
}"""

# Every option of the sidebar's backbone box, measured in the box's own font against the room the box has.
OPTIONS_CUT = """(texts) => {
  const input = document.querySelector('[data-testid="stSidebar"] input[role="combobox"]');
  const cs = getComputedStyle(input);
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = cs.font;
  const room = input.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
  return texts.filter(s => ctx.measureText(s).width > room);
}"""


def _main(tab):
    return tab.get_by_test_id("stMain")


def _sidebar(tab):
    return tab.get_by_test_id("stSidebar")


def _metrics_cut(tab) -> list[str]:
    metrics = _main(tab).locator('[data-testid="stMetric"]')
    return [text for i in range(metrics.count()) for text in metrics.nth(i).evaluate(CUT_TEXT)]


def _open(tab, url: str) -> None:
    tab.goto(url)
    tab.locator("h1").first.wait_for()
    settle(tab)


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    """The app, started the README way, on a machine whose network swallows every request and with an empty torch hub
    cache: vgg16's weights cannot come, whether or not this machine has internet. Yields (base URL, the network)."""
    home = tmp_path_factory.mktemp("offline")
    with SilentServer() as network:
        proxy = f"http://127.0.0.1:{network.port}"
        env = {"TORCH_HOME": str(home / "torch"), "NO_PROXY": "localhost,127.0.0.1", "no_proxy": "localhost,127.0.0.1"}
        env |= {name: proxy for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}
        with running_app(home / "server.log", START_TIMEOUT_S, env=env) as base:
            yield base, network


def _says_once_that_vgg16_cannot_load(tab, text: str = NO_WEIGHTS, hint: str = "Choose an image to start") -> None:
    tab.get_by_text(text).first.wait_for(timeout=ANSWER_WITHIN_MS)
    settle(tab)
    errors = _main(tab).locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 1 and text in errors.first.inner_text()
    main = _main(tab).inner_text()
    assert hint not in main, "a photo is selected: the page must not ask for one"
    assert SIDEBAR_NOTE not in _sidebar(tab).inner_text()  # the page's error says it: not a second time beside it
    assert_no_exception(tab)


def test_a_backbone_whose_weights_cannot_come_says_so_once_and_asks_the_network_once(offline_app, browser, page):
    base, network = offline_app
    page.goto(f"{base}/Classify?backbone=vgg16")
    _says_once_that_vgg16_cannot_load(page)
    assert _main(page).get_by_role("combobox", name="Sample", exact=True).input_value() == "Chelsea the cat"
    for lesson in ("Grad-CAM", "Feature maps"):  # go on to other pages with the same backbone
        _sidebar(page).get_by_role("link", name=re.compile(lesson)).click()
        _says_once_that_vgg16_cannot_load(page)

    student = browser.new_context(viewport={"width": 1280, "height": 1600}).new_page()
    student.goto(f"{base}/Classify?backbone=vgg16")  # a second session opening the teacher's link
    _says_once_that_vgg16_cannot_load(student)
    student.context.close()

    _sidebar(page).get_by_text("한국어").click()
    _says_once_that_vgg16_cannot_load(page, NO_WEIGHTS_KO, "시작하려면 이미지를 고르세요")
    assert network.connections == 1  # one try for the backbone, whatever the pages, sessions and languages

    _sidebar(page).get_by_text("English").click()
    settle(page)
    _sidebar(page).get_by_role("link", name=re.compile("Home")).click()
    settle(page)
    assert _sidebar(page).get_by_text(SIDEBAR_NOTE).count() == 1  # Home loads no network: the sidebar tells it
    assert _main(page).locator('[data-testid="stAlertContentError"]').count() == 0
    assert_no_exception(page)


@pytest.mark.parametrize("presenter", [1, 0], ids=["presenter", "normal"])
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_sidebar_shows_every_backbone_and_link_whole(server, page, lang, presenter):
    _open(page, f"{server}/?presenter={presenter}&lang={lang}")
    box = _sidebar(page).get_by_role("combobox")
    box.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert len(options) >= 14
    assert page.evaluate(OPTIONS_CUT, options) == []  # "EfficientNet-Lite0 · (" in presenter mode before
    assert _sidebar(page).evaluate(CUT_TEXT) == []  # e.g. "Grad-CAM (클래스 …" in the navigation
    assert_no_exception(page)


def test_in_presenter_mode_a_trained_model_reads_trained_and_its_parameter_count_is_whole(server, page):
    _open(page, f"{server}/Transfer_learning?presenter=1")
    assert train_demo_model(page)["correct"]
    settle(page)
    metric = _main(page).locator('[data-testid="stMetric"]').filter(has_text="Trainable parameters").last
    value = metric.locator('[data-testid="stMetricValue"]').inner_text()
    assert re.fullmatch(r"[\d,.]+( M)?", value) and "frozen" in metric.inner_text()
    assert _metrics_cut(page) == []  # was "3,843 / 3,37…"

    _sidebar(page).get_by_role("link", name=re.compile("Classify")).click()
    settle(page)
    choose(page, "Backbone", "my model")
    settle(page)
    assert _sidebar(page).get_by_role("combobox").input_value() == "my model · 🟠 trained"  # was "my model · 🟠 my model"
    assert _sidebar(page).evaluate(CUT_TEXT) == []

    _sidebar(page).get_by_text("한국어").click()
    settle(page)
    assert _sidebar(page).get_by_role("combobox").input_value() == "my model · 🟠 학습됨"
    assert _sidebar(page).evaluate(CUT_TEXT) == []
    _sidebar(page).get_by_role("link", name=re.compile("전이 학습")).click()
    settle(page)
    metric = _main(page).locator('[data-testid="stMetric"]').filter(has_text="학습되는 파라미터").last
    assert "고정" in metric.inner_text()
    assert _metrics_cut(page) == []
    assert_no_exception(page)
