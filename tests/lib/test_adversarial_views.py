"""An adversarial PNG judged the way other programs will read it: shifted crops, torchvision, other kernels, JPEG."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from explain.adversarial import VIEW_FAMILIES, AttackSettings, ViewSampler, attack_images
from explain.adversarial.settings import SINGLE_VIEW_STEPS
from explain.adversarial.views import MAX_SHIFT, WorstOffsets, centre_crop_at, family_views
from explain.errors import LensError
from explain.images import Preprocess, encode_png

from ..conftest import GOLDEN_RETRIEVER


@pytest.fixture(scope="module")
def robust_and_plain(lite0, chelsea):
    """Chelsea turned into a golden retriever with the lab's defaults (views on) and with views off, one run each."""
    robust = attack_images(lite0, [chelsea], AttackSettings(), target=GOLDEN_RETRIEVER)[0]
    plain = attack_images(lite0, [chelsea], AttackSettings(views=0, steps=10), target=GOLDEN_RETRIEVER)[0]
    return robust, plain


def test_whole_pixel_views_are_the_shifted_crops_themselves():
    gen = torch.Generator().manual_seed(1)
    canvas = torch.rand(6, 3, 40, 40, generator=gen)
    views, _ = ViewSampler(size=32, margin=4, rescaled=0.0).sample(canvas, gen)
    crops = {(dy, dx): canvas[..., 4 + dy : 36 + dy, 4 + dx : 36 + dx] for dy in range(-2, 3) for dx in range(-2, 3)}
    for i in range(len(canvas)):
        matches = [k for k, c in crops.items() if torch.allclose(views[i], c[i], atol=1e-5)]
        assert len(matches) == 1, i  # every view is exactly one crop a whole number of pixels off centre


def test_views_sent_to_given_offsets_are_those_crops_unless_rescaled():
    gen = torch.Generator().manual_seed(2)
    canvas = torch.rand(8, 3, 40, 40, generator=gen)
    offsets = torch.tensor([[dx, dy] for dx, dy in [(-2, 1), (0, -2), (2, 2), (1, 0), (-1, -1), (2, -2), (0, 0), (-2, 2)]])
    views, rescaled = ViewSampler(size=32, margin=4, rescaled=0.5).sample(canvas, gen, offsets)
    assert 0 < int(rescaled.sum()) < len(canvas)
    for i, (dx, dy) in enumerate(offsets.tolist()):
        crop = canvas[i, :, 4 + dy : 36 + dy, 4 + dx : 36 + dx]
        assert torch.allclose(views[i], crop, atol=1e-5) != bool(rescaled[i]), i


def test_the_weakest_offsets_are_picked_unseen_first_and_only_real_views_count():
    gen = torch.Generator().manual_seed(0)
    worst = WorstOffsets(2, torch.device("cpu"), centre_seen=True)
    side = 2 * MAX_SHIFT + 1
    centre = side * side // 2
    first = worst.pick(torch.arange(2), side * side, gen)
    assert all(int(p[0]) != centre for p in first[: side * side - 1])  # the exact crop is a view of every step already
    assert [int(p[0]) for p in first][-1] == centre
    unseen = WorstOffsets(8, torch.device("cpu"), centre_seen=True).pick(torch.arange(8), 1, gen)[0]
    assert len(set(unseen.tolist())) > 1  # unseen offsets in a random order, not the same sweep for every image
    # every offset seen once, image 0's offset 7 the weakest; a rescaled view (shown False) does not count
    idx = torch.arange(2)
    for k in range(side * side):
        pick = torch.tensor([k, k])
        worst.update(idx, pick, torch.tensor([5.0 - (k == 7) * 9, 5.0]), torch.tensor([True, True]))
    worst.update(idx, torch.tensor([3, 3]), torch.tensor([-20.0, -20.0]), torch.tensor([False, True]))
    weakest = worst.pick(idx, 2, gen)
    assert weakest[0].tolist() == [7, 3]
    assert tuple(worst.offsets[7].tolist()) == (0.0, -1.0)  # (x, y) of offset 7: one row up, centre column


def test_torchvision_rounds_the_crop_offset_where_we_floor_it():
    pp = Preprocess(input_size=224, resize_size=256, mean=(0.5,) * 3, std=(0.5,) * 3)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (256, 343, 3), dtype=np.uint8)  # 343 − 224 = 119: floor 59, round 60
    views = family_views(image, pp, jpeg=False)
    assert np.array_equal(views["own"][0], centre_crop_at(image, 224))
    assert np.array_equal(views["torchvision"][0], centre_crop_at(image, 224, dx=1))
    assert not np.array_equal(views["torchvision"][0], views["own"][0])
    assert len(views["shifts"]) == (2 * MAX_SHIFT + 1) ** 2 and len(views["resize"]) == 8


def test_the_robust_attack_fools_shifted_crops_that_the_exact_one_does_not(robust_and_plain):
    robust, plain = robust_and_plain
    assert robust.success and plain.success  # both fool this app's own crop
    assert set(robust.robust.views) == set(VIEW_FAMILIES)
    # measured: 21/25 shifted crops with the defaults, 1/25 with the attack on the exact crop only
    assert robust.robust.fooled["shifts"] >= 20 and robust.robust.fooled["torchvision"] == 1
    assert plain.robust.fooled["shifts"] <= 5  # a crop a pixel off undoes the fragile attack


def test_the_budget_holds_on_the_saved_png_and_only_the_square_around_the_crop_changes(robust_and_plain, lite0):
    robust, _ = robust_and_plain
    diff = robust.adversarial.astype(int) - robust.clean.astype(int)
    top, left, side = robust.crop_box
    assert side > lite0.preprocess.input_size  # the margin a shifted crop sees
    assert np.abs(diff).max() <= 2
    outside = diff.copy()
    outside[top : top + side, left : left + side] = 0
    assert not outside.any()


def test_the_verdicts_hold_in_torchvision_and_in_shifted_crops_computed_here(robust_and_plain, lite0):
    """Re-read the PNG bytes with PIL and torchvision, as another project would, and count again."""
    from torchvision import transforms

    robust, _ = robust_and_plain
    pil = Image.open(io.BytesIO(encode_png(robust.adversarial))).convert("RGB")
    pp = lite0.preprocess
    to_input = transforms.Compose([transforms.ToTensor(), transforms.Normalize(pp.mean, pp.std)])
    with torch.no_grad():
        tv = lite0.model(to_input(transforms.CenterCrop(pp.input_size)(transforms.Resize(pp.resize_size)(pil)))[None])
        assert int(tv.argmax()) == GOLDEN_RETRIEVER
        w, h = pil.size
        top, left = (h - pp.input_size) // 2, (w - pp.input_size) // 2
        shifted = torch.stack(
            [
                to_input(pil.crop((left + dx, top + dy, left + dx + pp.input_size, top + dy + pp.input_size)))
                for dy in range(-2, 3)
                for dx in range(-2, 3)
            ]
        )
        fooled = int((lite0.model(shifted).argmax(1) == GOLDEN_RETRIEVER).sum())
    assert fooled == robust.robust.fooled["shifts"]


@pytest.mark.parametrize("views", [-1, 9, 1.5, True])
def test_bad_views_say_what_to_change(views):
    with pytest.raises(LensError, match="Views per step"):
        AttackSettings(views=views).checked()


def test_a_photo_already_at_its_goal_is_judged_only_after_the_single_view_steps(lite0):
    """The first SINGLE_VIEW_STEPS steps see one view each, too few to call an image done; views off: judged at once."""
    from explain.classify import classify_images
    from explain.images import sample_image

    coffee = sample_image("coffee")
    espresso = classify_images(lite0, [coffee], 1)[0][0]
    assert espresso.prob > 0.9  # leads by far more than VIEW_MARGIN in every view before any step
    robust = attack_images(lite0, [coffee], AttackSettings(), target=espresso.index, check_views=False)[0]
    plain = attack_images(lite0, [coffee], AttackSettings(views=0), target=espresso.index, check_views=False)[0]
    assert SINGLE_VIEW_STEPS > 0 and robust.steps_used == SINGLE_VIEW_STEPS and robust.success
    assert plain.steps_used == 0 and plain.success


def test_a_stop_during_the_single_view_steps_keeps_the_latest_iterate(lite0, chelsea):
    calls = []
    run = attack_images(
        lite0, [chelsea], AttackSettings(), target=GOLDEN_RETRIEVER, check_views=False,
        callback=lambda progress: calls.append(progress.step), should_stop=lambda: len(calls) >= SINGLE_VIEW_STEPS - 1,
    )
    assert run.stopped and run[0].steps_used < SINGLE_VIEW_STEPS
    assert 1 <= run[0].linf <= 2  # the attack so far, not the untouched photo


def test_the_lead_every_view_must_show_falls_to_top_1_on_the_last_step():
    from explain.adversarial.settings import VIEW_MARGIN, VIEW_MARGIN_UNTIL

    settings = AttackSettings()
    margins = [settings.view_margin(step) for step in range(settings.steps + 1)]
    assert margins[: VIEW_MARGIN_UNTIL + 1] == [VIEW_MARGIN] * (VIEW_MARGIN_UNTIL + 1)
    assert all(a > b for a, b in zip(margins[VIEW_MARGIN_UNTIL:], margins[VIEW_MARGIN_UNTIL + 1 :]))
    assert margins[-1] == pytest.approx(settings.margin) and min(margins) >= settings.margin  # the goal on top, never less
    assert AttackSettings(steps=5).view_margin(5) == VIEW_MARGIN  # a short attack keeps the full lead
