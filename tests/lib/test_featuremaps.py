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


def test_grid_tiles_are_numbered_by_channel_not_by_content():
    """Channels 3 and 12 hold the same map: only the number drawn above each tile tells them apart."""
    from explain.featuremaps import channel_grid

    fmap = torch.rand(16, 7, 7)
    fmap[12] = fmap[3]
    grid = channel_grid(fmap, [3, 12, 3], tile=48)
    assert grid.numbered and grid.columns == 2
    boxes = [grid.tile_box(k) for k in range(3)]
    strip = boxes[0][0]
    assert boxes[0][2:] == boxes[1][2:] == (48, 48) and strip > 0  # the number sits above the map, covering none of it
    tiles = [grid.image[top : top + 48, left : left + 48] for top, left, _, _ in boxes]
    labels = [grid.image[top - strip : top, left : left + 48] for top, left, _, _ in boxes]
    assert np.array_equal(tiles[0], tiles[1])  # same map ...
    assert not np.array_equal(labels[0], labels[1])  # ... different channel number
    assert np.array_equal(labels[0], labels[2])  # same channel, same number
    assert (labels[0] < 128).any() and (labels[0] == 255).mean() > 0.5  # dark digits on the white strip


def test_tiny_tiles_are_not_numbered_and_keep_their_size():
    from explain.featuremaps import channel_grid

    grid = channel_grid(torch.rand(9, 5, 5), tile=10, gap=2)
    assert not grid.numbered and grid.image.shape[:2] == (34, 34) and grid.tile_box(4) == (12, 12, 10, 10)
    assert channel_grid(torch.rand(9, 5, 5), tile=48, numbered=False).image.shape[:2] == (3 * 50 - 2, 3 * 50 - 2)


def test_one_colour_map_for_the_channel_and_its_overlay(recording, lite0, chelsea):
    """At full strength the overlay is the enlarged channel itself, in the same colours by default and when chosen."""
    from explain.featuremaps import channel_image

    img = prepare(chelsea, lite0.preprocess).cropped
    fmap = recording.maps["blocks.3.0"]
    size = (img.shape[1], img.shape[0])
    assert np.array_equal(overlay_channel(img, fmap, 3, alpha=1.0), channel_image(fmap, 3, size))
    assert np.array_equal(overlay_channel(img, fmap, 3, 1.0, "magma"), channel_image(fmap, 3, size, "magma"))


def test_a_layer_of_one_by_one_maps_is_a_vector_of_channel_values(recording):
    from explain.featuremaps import is_vector

    assert is_vector(recording.maps["global_pool.pool"]) and is_vector((1280, 1, 1))
    assert not is_vector(recording.maps["bn2"]) and not any(is_vector(li.shape) for li in recording.layers[:-1])


def test_another_threads_forward_pass_neither_fills_nor_is_changed_by_this_threads_hooks(lite0):
    """A registry network is shared by every session (thread) of the server: a recording must hold only its own pass."""
    import threading

    from explain.hooks import attached

    mine, theirs = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0)), torch.ones(1, 3, 224, 224)
    with torch.no_grad():
        expected_theirs = lite0.model(theirs)
        expected_mine = lite0.model(mine)
    layer = lite0.model.get_submodule("conv_stem")
    got = {}

    def other_session() -> None:
        with torch.no_grad():
            got["theirs"] = lite0.model(theirs)

    with torch.no_grad(), hooked(lite0.model, ["conv_stem"]) as outputs, attached(forward=[(layer, lambda m, i, o: o * 0)]):
        worker = threading.Thread(target=other_session)
        worker.start()
        worker.join()
        assert outputs == {}  # the other thread's pass left nothing here
        zeroed = lite0.model(mine)  # this thread's own hook still changes this thread's pass
    assert torch.allclose(got["theirs"], expected_theirs, atol=1e-5)  # and did not change theirs
    assert list(outputs) == ["conv_stem"] and not torch.allclose(zeroed, expected_mine, atol=1e-3)
    assert hook_count(lite0.model) == 0
