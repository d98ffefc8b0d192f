"""Adversarial examples on real weights and a real photo, judged on the saved PNG."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explain.adversarial import (
    AttackSettings,
    attack_batch,
    attack_images,
    leaky_relus,
    perturbation_image,
    quantise,
)
from explain.classify import classify_images
from explain.errors import LensError
from explain.images import decode_image, encode_png, prepare, to_tensor
from explain.regularisers import total_variation

from ..conftest import CAT_CLASSES, GOLDEN_RETRIEVER


def reread(image: np.ndarray) -> np.ndarray:
    """What a user gets back after downloading the PNG and uploading it again."""
    return decode_image(encode_png(image))


@pytest.fixture(scope="module")
def targeted(lite0, chelsea):
    (result,) = attack_images(lite0, [chelsea], AttackSettings(eps=2), target=GOLDEN_RETRIEVER)
    return result


def test_targeted_pgd_turns_the_cat_into_a_dog_on_the_saved_png(lite0, chelsea, targeted):
    assert targeted.before[0].index in CAT_CLASSES
    assert targeted.success and targeted.after[0].index == GOLDEN_RETRIEVER
    # the same verdict from the Classify pipeline, on the PNG bytes a user would download
    (scores,) = classify_images(lite0, [reread(targeted.adversarial)], 1)
    assert scores[0].index == GOLDEN_RETRIEVER
    # the clean photo still is a cat: the change is the perturbation, not the resizing
    (clean_scores,) = classify_images(lite0, [targeted.clean], 1)
    assert clean_scores[0].index in CAT_CLASSES


def test_perturbation_stays_inside_eps_and_inside_the_crop(lite0, targeted):
    diff = targeted.adversarial.astype(int) - targeted.clean.astype(int)
    assert 0 < np.abs(diff).max() <= 2
    top, left, size = targeted.crop_box
    outside = diff.copy()
    outside[top : top + size, left : left + size] = 0
    assert not outside.any()
    assert np.array_equal(diff[top : top + size, left : left + size], targeted.perturbation)
    assert targeted.clean.shape[:2] == (256, round(451 * 256 / 300))  # chelsea is 300×451; lite0 resizes to 256
    assert targeted.linf == 2 and targeted.l2 == pytest.approx(np.sqrt((diff.astype(float) ** 2).sum()))
    assert 40 < targeted.psnr < 60 and 0.95 < targeted.ssim < 1


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_untargeted_attack_changes_the_prediction(lite0, chelsea, method):
    (result,) = attack_images(lite0, [chelsea], AttackSettings(method=method, eps=2, steps=3))
    (scores,) = classify_images(lite0, [reread(result.adversarial)], 5)
    assert result.success and scores[0].index != result.before[0].index == result.goal
    assert result.after[0].index == scores[0].index
    assert np.abs(result.perturbation).max() <= 2


def test_mifgsm_with_tv_penalty_is_smoother(lite0, chelsea):
    base = AttackSettings(method="mifgsm", eps=4, steps=4, diversity=0.0, confidence=0.99, views=0)
    (rough,) = attack_images(lite0, [chelsea], base)
    (smooth,) = attack_images(lite0, [chelsea], AttackSettings(**{**base.__dict__, "tv_weight": 1.0}))
    tv = [float(total_variation(torch.from_numpy(r.perturbation).permute(2, 0, 1)[None].float())) for r in (rough, smooth)]
    assert tv[1] < 0.8 * tv[0]
    assert np.abs(smooth.perturbation).max() <= 4


def test_l2_budget_holds_after_rounding(lite0, chelsea):
    eps = 3 * 255.0  # an L2 norm of 3.0 on [0, 1] pixels
    (result,) = attack_images(lite0, [chelsea], AttackSettings(norm="l2", eps=eps, steps=3))
    assert 0 < result.l2 <= eps
    assert result.success


@settings(max_examples=60, deadline=None)
@given(
    eps=st.floats(1, 20),
    norm=st.sampled_from(["linf", "l2"]),
    scale=st.floats(0.1, 40),
    seed=st.integers(0, 2**16),
)
def test_quantised_perturbation_is_whole_levels_inside_the_budget(eps, norm, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (2, 3, 5, 5), generator=gen).float()
    delta = torch.randn(x.shape, generator=gen) * scale
    s = AttackSettings(eps=eps if norm == "linf" else eps * 10, norm=norm)
    q = quantise(delta, x, s)
    assert torch.equal(q, q.round())
    assert ((x + q) >= 0).all() and ((x + q) <= 255).all()
    if norm == "linf":
        # whole levels, never more than ε: ε = 2/255·255 = 1.9999999999999964 in floats still means 2 levels
        assert s.budget == math.floor(eps + 1e-9) and s.budget <= eps + 1e-9
        assert q.abs().max() <= s.budget
    else:
        assert (q.flatten(1).norm(dim=1) <= s.eps + 1e-6).all()


def test_batch_early_stop_and_callback(lite0, chelsea):
    crops = torch.cat([prepare(chelsea, lite0.preprocess).tensor] * 2)
    seen = []
    egyptian_cat = 285  # one step away for this tiger cat; the dog takes several
    out = attack_batch(
        lite0, crops, torch.tensor([GOLDEN_RETRIEVER, egyptian_cat]), True, AttackSettings(eps=2, steps=10),
        callback=lambda progress: seen.append((progress.step, int(progress.metrics["reached"]))),
    )
    assert [s for s, _ in seen] == list(range(len(seen)))
    assert out.delta.abs().max() <= 2 and torch.equal(out.delta, out.delta.round())
    assert out.reached.all() and out.steps_used[1] < out.steps_used[0] < 10
    assert [done for _, done in seen] == sorted(done for _, done in seen) and seen[-1][1] == 2
    stopped = attack_batch(lite0, crops, torch.tensor([1, 1]), True, AttackSettings(eps=2, steps=10), should_stop=lambda: True)
    assert not stopped.reached.any() and stopped.stopped and not out.stopped


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"eps": 0}, "at least 1"),
        ({"eps": 0.5}, "whole grey levels"),
        ({"eps": -3}, "at least 1"),
        ({"eps": float("nan")}, "ε"),
        ({"eps": 300}, "pixel range"),
        ({"steps": 0}, "Steps"),
        ({"steps": 2.5}, "whole number"),
        ({"steps": 10_000}, "1 to 1000"),
        ({"method": "deepfool"}, "fgsm, pgd, mifgsm"),
        ({"method": "fgsm", "norm": "l2"}, "pgd"),
        ({"step_size": 0}, "Step size"),
        ({"leak": -0.1}, "leak"),
        ({"leak": 0.9}, "0 to 0.5"),
        ({"leak": float("nan")}, "leak"),
        ({"view_momentum": -0.1}, "View momentum"),
        ({"view_momentum": 1.0}, "below 1"),
        ({"view_momentum": float("nan")}, "View momentum"),
    ],
)
def test_bad_settings_say_what_to_change(kwargs, words):
    with pytest.raises(LensError, match=words):
        AttackSettings(**kwargs).checked()


def _tiny(inplace: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 32), torch.nn.ReLU6(inplace=inplace), torch.nn.Linear(32, 32), torch.nn.ReLU(inplace=inplace), torch.nn.Linear(32, 3)
    )


def _input_grad(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = model(x)
    (grad,) = torch.autograd.grad(out[:, 0].sum(), x)
    return out.detach(), grad


def _leaky_grad_by_hand(model: torch.nn.Module, x: torch.Tensor, leak: float) -> torch.Tensor:
    """The same gradient written out layer by layer: ReLU6/ReLU pass 1 where on, `leak` where off."""
    lin1, _, lin2, _, lin3 = model
    h1 = lin1(x)
    d1 = torch.where((h1 > 0) & (h1 < 6), 1.0, leak)
    h2 = lin2(h1.clamp(0, 6))
    d2 = torch.where(h2 > 0, 1.0, leak)
    w1, w2, w3 = lin1.weight.detach(), lin2.weight.detach(), lin3.weight.detach()
    g2 = w3[0].expand_as(h2) * d2  # d out0 / d h2
    g1 = (g2 @ w2) * d1
    return g1 @ w1


@pytest.mark.parametrize("inplace", [False, True])
def test_leaky_relus_change_the_gradient_not_the_answer(inplace):
    model = _tiny(inplace)
    x = torch.randn(16, 6) * 4  # wide enough that units sit below 0 and above 6
    plain_out, plain_grad = _input_grad(model, x)
    with leaky_relus(model, 0.25):
        leaky_out, leaky_grad = _input_grad(model, x)
    assert torch.equal(plain_out, leaky_out)
    assert not torch.allclose(plain_grad, leaky_grad)
    assert torch.allclose(leaky_grad, _leaky_grad_by_hand(model, x, 0.25), atol=1e-5)
    assert torch.allclose(plain_grad, _leaky_grad_by_hand(model, x, 0.0), atol=1e-5)
    # leaving the block removes every hook: the plain gradient is back
    assert torch.equal(_input_grad(model, x)[1], plain_grad)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_leaky_relus_leave_other_threads_and_zero_leak_alone():
    import threading

    model = _tiny(False)
    x = torch.randn(16, 6) * 4
    plain_grad = _input_grad(model, x)[1]
    seen = {}
    with leaky_relus(model, 0.25):
        worker = threading.Thread(target=lambda: seen.update(grad=_input_grad(model, x)[1]))
        worker.start()
        worker.join()
    assert torch.equal(seen["grad"], plain_grad)  # a Grad-CAM in another session keeps the true gradient
    with leaky_relus(model, 0.0):
        assert torch.equal(_input_grad(model, x)[1], plain_grad)


def test_leak_is_annealed_to_zero_and_zero_leak_is_the_plain_attack(lite0, chelsea):
    leaks = AttackSettings(leak=0.1, steps=10).leaks()
    assert leaks[0] == pytest.approx(0.1) and leaks[-1] == pytest.approx(0.01)
    assert all(a > b for a, b in zip(leaks, leaks[1:]))
    assert AttackSettings(method="fgsm", leak=0.1).leaks() == [0.1]
    crops = prepare(chelsea, lite0.preprocess).tensor
    goal = torch.tensor([GOLDEN_RETRIEVER])
    plain = attack_batch(lite0, crops, goal, True, AttackSettings(eps=2, steps=3, leak=0.0, confidence=0.999))
    leaky = attack_batch(lite0, crops, goal, True, AttackSettings(eps=2, steps=3, leak=0.1, confidence=0.999))
    assert not torch.equal(plain.delta, leaky.delta)  # the leak changes the path the attack takes
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in lite0.model.modules())


def test_bad_target_is_a_lens_error(lite0, chelsea):
    with pytest.raises(LensError, match="out of range"):
        attack_images(lite0, [chelsea], target=1000)


def test_perturbation_image_writes_its_gain():
    shown, gain = perturbation_image(np.array([[[-2, 0, 2]]], dtype=np.int16))
    assert gain == 63 and shown.tolist() == [[[2, 128, 254]]]


def test_view_momentum_changes_the_path_and_the_budget_still_holds(lite0, chelsea):
    """Momentum over the views' gradients steers the attack; the saved perturbation stays whole levels within ε."""
    from explain.adversarial.views import canvas_box

    prepared = prepare(chelsea, lite0.preprocess)
    top, left, side = canvas_box(*prepared.resized.shape[:2], lite0.preprocess)
    canvas = to_tensor(prepared.resized[top : top + side, left : left + side])  # the crop and the margin views may shift into
    goal = torch.tensor([GOLDEN_RETRIEVER])
    common = {"eps": 2, "steps": 4, "views": 2, "confidence": 0.999}  # no early stop: every step is taken
    plain = attack_batch(lite0, canvas, goal, True, AttackSettings(view_momentum=0.0, **common))
    steered = attack_batch(lite0, canvas, goal, True, AttackSettings(view_momentum=0.75, **common))
    assert not torch.equal(plain.delta, steered.delta)
    for outcome in (plain, steered):
        assert torch.equal(outcome.delta, outcome.delta.round()) and outcome.delta.abs().max() <= 2
    # without views the setting is not used: the same attack as before
    no_views = {"eps": 2, "steps": 3, "views": 0, "confidence": 0.999}
    crops = prepared.tensor
    assert torch.equal(
        attack_batch(lite0, crops, goal, True, AttackSettings(view_momentum=0.0, **no_views)).delta,
        attack_batch(lite0, crops, goal, True, AttackSettings(view_momentum=0.75, **no_views)).delta,
    )
