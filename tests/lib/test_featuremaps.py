import numpy as np
import pytest
import torch

from explain.errors import LensError
from explain.featuremaps import (
    channel_grid,
    channel_stats,
    overlay_channel,
    record_image,
    top_channels,
)
from explain.hooks import hook_count, hooked
from explain.images import prepare


@pytest.fixture(scope="module")
def recording(lite0, chelsea):
    return record_image(lite0, prepare(chelsea, lite0.preprocess).tensor)


def test_every_layer_of_the_default_backbone_yields_a_map(lite0, recording):
    layers = recording.layers
    assert len(layers) > 50
    assert layers[0].name == "conv_stem"
    for info in layers:
        fmap = recording.maps[info.name]
        assert fmap.ndim == 3 and tuple(fmap.shape) == info.shape
        assert torch.isfinite(fmap).all()
        grid = channel_grid(fmap, list(range(min(4, fmap.shape[0]))))
        assert grid.image.ndim == 3 and grid.image.dtype == np.uint8
    main = [li.name for li in layers if li.main]
    assert main[:3] == ["conv_stem", "bn1", "blocks.0.0"] and "blocks.6.0" in main and "bn2" in main
    # Layers go from large maps with few channels to small maps with many.
    assert layers[0].shape[1] > layers[-1].shape[1]
    assert hook_count(lite0.model) == 0


def test_recorded_logits_match_the_model(lite0, chelsea, recording):
    with torch.no_grad():
        direct = lite0.logits(prepare(chelsea, lite0.preprocess).tensor)
    assert torch.allclose(direct.cpu(), recording.logits, atol=1e-4)


def test_hooks_are_removed_when_the_forward_raises(lite0):
    with pytest.raises(RuntimeError):
        with hooked(lite0.model, ["conv_stem", "blocks.1.0"]) as outs:
            lite0.model(torch.zeros(1, 5, 32, 32))  # wrong number of channels
    assert outs == {}
    assert hook_count(lite0.model) == 0


def test_unknown_layer_is_a_lens_error(lite0, recording):
    with pytest.raises(LensError):
        recording.layer("blocks.99")
    with pytest.raises(LensError):
        with hooked(lite0.model, ["nope"]):
            pass
    assert hook_count(lite0.model) == 0


def test_different_layers_give_different_grids(recording):
    # two consecutive layers of one stage: the same shape, so only what they computed can tell the grids apart
    first, second = recording.maps["blocks.1.0"], recording.maps["blocks.1.1"]
    assert first.shape == second.shape
    a = channel_grid(first, list(range(16)), tile=32)
    b = channel_grid(second, list(range(16)), tile=32)
    again = channel_grid(first, list(range(16)), tile=32)
    assert a.image.shape == b.image.shape and np.array_equal(a.image, again.image)
    assert np.mean(a.image != b.image) > 0.25  # most pixels differ, not a rounding in one tile


def test_grid_layout_and_normalisation(recording):
    fmap = recording.maps["blocks.2.0"]
    per_channel = channel_grid(fmap, list(range(9)), normalise="channel", tile=10, gap=2)
    per_layer = channel_grid(fmap, list(range(9)), normalise="layer", tile=10, gap=2)
    assert per_channel.columns == 3 and per_channel.image.shape[:2] == (34, 34)
    assert not np.array_equal(per_channel.image, per_layer.image)
    with pytest.raises(LensError, match="does not exist"):
        channel_grid(fmap, [fmap.shape[0]])


def test_top_channels_are_sorted_by_mean(recording):
    fmap = recording.maps["bn2"]
    top = top_channels(fmap, 5)
    means = channel_stats(fmap).mean
    assert list(top) == list(np.argsort(-means)[:5])
    assert means[top[0]] == means.max()


def test_overlay_keeps_image_size(recording, lite0, chelsea):
    img = prepare(chelsea, lite0.preprocess).cropped
    out = overlay_channel(img, recording.maps["blocks.3.0"], 3, alpha=0.4)
    assert out.shape == img.shape and not np.array_equal(out, img)
