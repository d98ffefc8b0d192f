"""Ideal images on the real EfficientNet-Lite0: small sizes and few steps keep these fast."""

import threading

import numpy as np
import pytest
import torch

from explain.errors import LensError
from explain.hooks import hook_count
from explain.images import to_tensor
from explain.regularisers import total_variation
from explain.synthesis import (
    PRESETS,
    IdealSettings,
    channel_target,
    class_target,
    fft_param,
    ideal_image,
    pad,
    preset,
    random_rotate,
    random_scale,
)

from ..conftest import GOLDFISH

SMALL = IdealSettings(method="pixels", steps=12, lr=0.02, size=128, seed=0)


def image_tv(image: np.ndarray) -> float:
    return float(total_variation(to_tensor(image))[0])


def test_class_probability_rises_by_a_large_margin(lite0):
    result = ideal_image(lite0, class_target(lite0, "goldfish"), SMALL)
    assert result.target.index == GOLDFISH and result.target_name == "goldfish (1)"
    first = result.history["prob"][0]
    assert first < 0.05
    assert result.prob > 0.6 and result.prob - first > 0.55
    assert result.rank == 1
    assert result.image.dtype == np.uint8 and result.image.shape == (128, 128, 3)
    assert result.steps_done == 12 and not result.stopped and result.seconds > 0
    assert set(result.history) >= {"prob", "activation", "objective", "total"}
    assert all(len(v) == 12 for v in result.history.values())


def test_clear_preset_on_fft_raises_the_probability_too(lite0):
    # Without the random transforms the curve is smooth enough for a 10-step test; they are tested below.
    settings = preset("clear", steps=10, size=128, batch=1, pad=0, jitter=0, scale=(1.0, 1.0), rotate=0.0, net_size=0, objective="logit")
    result = ideal_image(lite0, class_target(lite0, GOLDFISH), settings)
    assert result.history["prob"][0] < 0.05 and result.prob > 0.5


def test_a_larger_tv_weight_gives_a_smoother_image(lite0):
    target = class_target(lite0, GOLDFISH)
    rough = ideal_image(lite0, target, SMALL)
    smooth = ideal_image(lite0, target, IdealSettings(**{**SMALL.__dict__, "tv": 300.0}))
    assert image_tv(smooth.image) < 0.7 * image_tv(rough.image)
    assert "tv" in smooth.history and "tv" not in rough.history


def test_same_seed_same_image_other_seed_other_image(lite0):
    target = class_target(lite0, GOLDFISH)
    settings = preset("clear", steps=3, size=64, batch=2, net_size=0)
    a = ideal_image(lite0, target, settings)
    b = ideal_image(lite0, target, settings)
    c = ideal_image(lite0, target, IdealSettings(**{**settings.__dict__, "seed": 1}))
    assert np.array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


def test_channel_objective_rises_and_hooks_are_removed(lite0):
    target = channel_target(lite0, "blocks.3", 5)
    result = ideal_image(lite0, target, IdealSettings(method="pixels", steps=8, lr=0.05, size=64))
    assert result.prob is None and result.rank is None
    assert result.history["activation"][-1] > result.history["activation"][0] + 0.5
    assert hook_count(lite0.model) == 0
    neuron = ideal_image(lite0, channel_target(lite0, "blocks.3", 5, neuron=True), IdealSettings(method="pixels", steps=4, size=64))
    assert neuron.target.kind == "neuron" and "centre neuron" in neuron.target_name
    assert hook_count(lite0.model) == 0


def test_hooks_are_removed_when_the_callback_fails(lite0):
    def boom(progress):
        raise RuntimeError("page went away")

    with pytest.raises(RuntimeError):
        ideal_image(lite0, channel_target(lite0, "blocks.2", 0), IdealSettings(method="pixels", steps=3, size=64), callback=boom)
    assert hook_count(lite0.model) == 0


def test_callback_sees_every_step_and_stop_ends_early(lite0):
    seen = []
    stop = threading.Event()

    def callback(progress):
        seen.append((progress.step, progress.metrics["prob"], set(progress.metrics)))
        assert progress.preview.shape == (128, 128, 3) and progress.total == 20 and progress.phase == "optimise"
        assert all(len(values) == progress.step for values in progress.history.values())
        if progress.step == 3:
            stop.set()

    result = ideal_image(lite0, class_target(lite0, GOLDFISH), IdealSettings(**{**SMALL.__dict__, "steps": 20, "tv": 0.1}), callback, stop)
    assert [s for s, _, _ in seen] == [1, 2, 3]
    assert all(0 <= p <= 1 for _, p, _ in seen) and seen[0][2] == {"prob", "activation", "objective", "tv", "total"}
    assert result.stopped and result.steps_done == 3 and len(result.history["prob"]) == 3
    called = []
    result = ideal_image(lite0, class_target(lite0, GOLDFISH), SMALL, should_stop=lambda: called.append(1) or len(called) >= 2)
    assert result.stopped and result.steps_done == 2


def test_the_model_is_left_as_it_was(lite0):
    before = {k: v.clone() for k, v in list(lite0.model.state_dict().items())[:6]}
    ideal_image(lite0, class_target(lite0, GOLDFISH), IdealSettings(method="pixels", steps=2, size=64))
    assert all(p.grad is None for p in lite0.model.parameters())
    assert all(torch.equal(before[k], v) for k, v in list(lite0.model.state_dict().items())[:6])


def test_fft_param_is_an_image_in_range():
    param = fft_param(32, torch.Generator().manual_seed(0), torch.device("cpu"))
    image = param.render()
    image = image.detach()
    assert image.shape == (1, 3, 32, 32) and 0 < float(image.min()) and float(image.max()) < 1
    assert abs(float(image.mean()) - 0.5) < 0.05  # starts near grey: small random spectrum


def test_transforms_keep_batch_and_change_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 40, 40)
    assert pad(4)(x, g).shape == (3, 3, 48, 48)
    scaled = random_scale(0.8, 1.2)(x, g)
    rotated = random_rotate(20)(x, g)
    assert scaled.shape == rotated.shape == x.shape
    assert not torch.allclose(scaled, x) and not torch.allclose(rotated, x)
    assert not torch.allclose(rotated[0], rotated[1])  # each copy gets its own angle


def test_user_mistakes_raise_lens_error(lite0):
    with pytest.raises(LensError, match="Unknown layer"):
        channel_target(lite0, "no.such.layer", 0)
    with pytest.raises(LensError, match="out of range"):
        channel_target(lite0, "blocks.3", 10_000)
    with pytest.raises(LensError, match="Unknown class"):
        class_target(lite0, "unicorn")
    with pytest.raises(LensError, match="Unknown method"):
        ideal_image(lite0, class_target(lite0, 1), IdealSettings(method="dream"))
    with pytest.raises(LensError, match="Unknown preset"):
        preset("fastest")
    assert set(PRESETS) == {"course", "clear"}
