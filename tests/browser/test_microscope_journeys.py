"""Channel microscope, as a student reaches and uses it, in Chromium against the app started the README way (issue 18,
part 3): the index is built with a progress bar, the patches shown are the library's, links open it in Korean, Stop works."""

from __future__ import annotations

import re

import pytest

from ..live_app import JOB_TIMEOUT_MS, choose, main_button, set_number, settle
from .conftest import assert_no_exception

pytestmark = pytest.mark.browser


@pytest.fixture
def same_cache(index_dir, monkeypatch):
    from explain.microscope.store import INDEX_DIR_ENV

    monkeypatch.setenv(INDEX_DIR_ENV, str(index_dir))


def _patch_captions(tab) -> list[str]:
    images = tab.get_by_test_id("stMainBlockContainer").locator('[data-testid="stImage"]').filter(has_text=re.compile(r"^#\d+ · "))
    images.nth(8).wait_for(timeout=JOB_TIMEOUT_MS)  # the first visit indexes 160 photos: a loaded 2-core machine takes minutes
    return [images.nth(i).inner_text().strip() for i in range(images.count())]


def _expected(backbone, layer: str, channel: int) -> list[str]:
    from explain.microscope import find_index, query_channel, sample_images

    index = find_index(backbone, sample_images())
    assert index is not None, "the app built the index into the shared cache"
    return [f"#{p.rank} · {p.value:.3f} · {p.file} · box " for p in query_channel(index, layer, channel, 9).top]


def test_a_new_network_builds_its_index_with_a_progress_bar_and_shows_the_librarys_patches(server, page, same_cache):
    from explain.models import load_backbone

    page.goto(f"{server}/Channel_microscope?backbone=efficientnet_lite1&layer=blocks.3.0&channel=5")
    page.get_by_role("heading", name="Channel microscope").first.wait_for()
    page.locator('[data-testid="stProgress"]').filter(has_text=re.compile(r"Indexing: photo \d+ of 160")).first.wait_for()
    shown = _patch_captions(page)
    settle(page)
    assert_no_exception(page)
    for param in ("backbone=efficientnet_lite1", "layer=blocks.3.0", "channel=5"):
        assert param in page.url
    lite1 = load_backbone("efficientnet_lite1", device="cpu")
    assert [s[: len(e)] for s, e in zip(shown, _expected(lite1, "blocks.3.0", 5))] == _expected(lite1, "blocks.3.0", 5)
    set_number(page, "Channel", 8)
    assert "channel=8" in page.url
    shown = _patch_captions(page)
    assert all(s.startswith(e) for s, e in zip(shown, _expected(lite1, "blocks.3.0", 8)))
    choose(page, "Layer", "1. conv_stem")
    settle(page)
    assert "layer=conv_stem" in page.url and "box 3×3" in _patch_captions(page)[0]
    assert page.locator('[data-testid="stProgress"]').count() == 0  # switching channels never indexes again


def test_feature_maps_opens_its_channel_in_the_microscope_in_korean(server, page, same_cache, lite0):
    page.goto(f"{server}/Feature_maps?lang=ko&layer=blocks.2.1&channel=7")
    page.get_by_role("heading", name="특성 맵").first.wait_for()
    settle(page)
    main_button(page, "채널 현미경에서 열기 🔬").click()
    page.wait_for_url(re.compile(r"/Channel_microscope\?.*layer=blocks\.2\.1"))
    page.get_by_role("heading", name="채널 현미경").first.wait_for()
    shown = _patch_captions(page)
    settle(page)
    assert_no_exception(page)
    assert "channel=7" in page.url and "lang=ko" in page.url
    assert page.get_by_role("spinbutton", name="채널", exact=True).input_value() == "7"
    assert all(s.startswith(e.replace("· box ", "· 상자 ")) for s, e in zip(shown, _expected(lite0, "blocks.2.1", 7)))


def test_stop_keeps_the_channels_ideal_image_so_far(server, page):
    page.goto(f"{server}/Channel_microscope?layer=blocks.4.0&channel=10")
    _patch_captions(page)
    settle(page)
    main_button(page, "Make its ideal image ✨").click()
    page.locator('[data-testid="stImage"]').filter(has_text=re.compile(r"^step \d+ of 120")).first.wait_for()
    main_button(page, "Stop").click()
    kept = page.locator('[data-testid="stImage"]').filter(has_text=re.compile(r"^ideal image of blocks\.4\.0 channel 10: .* stopped at step \d+ of 120"))
    kept.first.wait_for()
    settle(page)
    assert_no_exception(page)
    k = int(re.search(r"stopped at step (\d+) of 120", kept.first.inner_text()).group(1))
    assert 1 <= k < 120
