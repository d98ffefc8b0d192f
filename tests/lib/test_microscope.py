"""The channel microscope's index and queries (explain/microscope), checked against a fresh recording of every photo."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import pytest
import torch

from explain.errors import LensError
from explain.hooks import hooked
from explain.images import prepare, read_image, save_png
from explain.limits import MAX_MICROSCOPE_TOP
from explain.microscope import (
    build_index,
    ensure_index,
    find_index,
    folder_images,
    index_layers,
    open_index,
    query_channel,
    sample_images,
    store,
    zip_images,
)
from explain.models import with_preprocess
from explain.receptive import effective_receptive_field, receptive_field, trace_network

from ..shared import zip_of

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "brick", "colorwheel")


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    """A folder as a user has one: photos at the top and in a sub-folder, and a file that is no photo."""
    root = tmp_path_factory.mktemp("photos")
    small = sample_images(crops=1, photos=PHOTOS)  # each photo whole and one crop of it: 12 photos
    for i, item in enumerate(small.images):
        where = root / ("more" if i % 3 == 0 else "") / item.name.replace("/", "_")
        save_png(item.load(), where)
    (root / "notes.txt").write_text("not a photo")
    return root


@pytest.fixture(scope="module")
def built(lite0, photo_dir, tmp_path_factory):
    progress = []
    result = build_index(lite0, folder_images(photo_dir), tmp_path_factory.mktemp("idx") / "index", callback=progress.append)
    return result, progress


def _recorded(lite0, index, layer):
    """Every indexed photo read again from its file and recorded alone, as the Feature maps page records it: (N, C, H, W)."""
    maps = []
    with torch.no_grad(), hooked(lite0.model, [layer]) as out:
        for i in range(len(index)):
            lite0.model(lite0.normalize(prepare(read_image(index.file_path(i)), lite0.preprocess).tensor))
            maps.append(out[layer][0])
    return torch.stack(maps)


@pytest.mark.parametrize("layer, channels", [("conv_stem", (0, 17)), ("blocks.2.0", (5, 39)), ("blocks.5.1", (100,)), ("bn2", (7,)), ("global_pool.pool", (281,))])
def test_the_top_patches_are_the_photos_with_the_highest_values(lite0, built, layer, channels):
    index = built[0].index
    maps = _recorded(lite0, index, layer)
    peaks = maps.flatten(2).max(2).values  # (N, C)
    for channel in channels:
        query = query_channel(index, layer, channel, k=4)
        chosen = [p.image for p in query.top]
        values = [p.value for p in query.top]
        assert values == sorted(values, reverse=True) and len(set(chosen)) == 4
        for p in query.top:
            assert p.value == pytest.approx(float(peaks[p.image, channel]), abs=1e-4, rel=1e-4)
            assert float(maps[p.image, channel, p.y, p.x]) == pytest.approx(float(peaks[p.image, channel]), abs=1e-4, rel=1e-4)
        others = [float(peaks[i, channel]) for i in range(len(index)) if i not in chosen]
        assert min(values) >= max(others) - 1e-4  # no photo left out is stronger
        assert np.allclose(query.values, peaks[:, channel].numpy(), atol=1e-4, rtol=1e-4)
        assert query.counts.sum() == len(index)


def test_each_box_is_the_receptive_field_and_the_patch_is_the_network_input_inside_it(lite0, built):
    index = built[0].index
    for layer, channel in (("blocks.1.0", 3), ("blocks.3.1", 20), ("conv_head", 9)):
        for p in query_channel(index, layer, channel, k=2).top:
            prepared = prepare(read_image(p.file), lite0.preprocess)  # the file itself, read again
            trace = trace_network(lite0.model, lite0.normalize(prepared.tensor))
            assert p.box == receptive_field(trace, layer, p.y, p.x)
            x0, y0, x1, y1 = p.box
            assert np.array_equal(p.patch, prepared.cropped[y0:y1, x0:x1])
    # every input pixel with a gradient on the strongest neuron lies inside its box
    p = query_channel(index, "blocks.2.1", 11, k=1).top[0]
    x = lite0.normalize(prepare(read_image(p.file), lite0.preprocess).tensor)
    field = effective_receptive_field(lite0.model, x, "blocks.2.1", 11, p.y, p.x)
    ys, xs = np.nonzero(field.weights)
    x0, y0, x1, y1 = p.box
    assert len(ys) and ys.min() >= y0 and ys.max() < y1 and xs.min() >= x0 and xs.max() < x1


def test_the_index_holds_every_main_layer_and_comes_back_from_disk_the_same(lite0, built, photo_dir):
    result, progress = built
    index = result.index
    assert [li.name for li in index.layers] == [li.name for li in index_layers(lite0)] and len(index.layers) == 21
    assert len(index) == 12 and any("notes.txt" in s for s in result.skipped)
    assert progress[-1].step == progress[-1].total == 12 and [p.step for p in progress] == sorted(p.step for p in progress)
    for i, row in enumerate(index.manifest["images"]):  # the manifest names each photo by its file's digest
        assert row["sha1"] == hashlib.sha1((photo_dir / row["name"]).read_bytes()).hexdigest()
        assert (photo_dir / row["name"]).exists() and index.file_path(i) == str(photo_dir / row["name"])
    store._OPEN.clear()  # as a new process opens it
    again = open_index(result.path)
    assert again is not index and again.manifest == index.manifest and again.layers == index.layers
    assert np.array_equal(again.values, index.values) and np.array_equal(again.positions, index.positions)
    assert isinstance(again.values, np.memmap) and again.values.dtype == np.float32
    assert again.manifest["backbone"] == "efficientnet_lite0" and again.manifest["preprocess"]["input_size"] == 224
    first = prepare(read_image(again.file_path(0)), lite0.preprocess).cropped
    assert np.array_equal(again.inputs[0], first)
    assert find_index(lite0, folder_images(photo_dir), result.path).path == result.path
    assert ensure_index(lite0, folder_images(photo_dir), result.path).reused


def test_an_index_of_another_network_or_other_photos_is_not_reused(lite0, built, photo_dir, tmp_path):
    result = built[0]
    other = copy.copy(lite0)
    other.model = copy.deepcopy(lite0.model)
    with torch.no_grad():
        other.model.conv_stem.weight[0, 0, 0, 0] += 0.5  # a fine-tuned copy: same names, other weights
    photos = folder_images(photo_dir)
    assert find_index(other, photos, result.path) is None
    with pytest.raises(LensError, match="built for"):
        open_index(result.path).check(other)
    assert find_index(with_preprocess(lite0, interpolation="nearest"), photos, result.path) is None
    fewer = type(photos)(photos.title, photos.images[:-1], photos.skipped, photos.root)
    assert find_index(lite0, fewer, result.path) is None
    copy_path = tmp_path / "copy"
    rebuilt = ensure_index(other, photos, copy_path)
    assert not rebuilt.reused and rebuilt.index.matches(other) and not rebuilt.index.matches(lite0)
    assert not np.array_equal(rebuilt.index.values[:32], result.index.values[:32])  # conv_stem channel 0 changed


def test_a_stopped_build_saves_nothing(lite0, photo_dir, tmp_path):
    seen = []
    result = build_index(lite0, folder_images(photo_dir), tmp_path / "idx", callback=seen.append, should_stop=lambda: bool(seen) and seen[-1].step > 0)
    assert result.stopped and result.index is None
    assert list(tmp_path.iterdir()) == []  # neither the index nor its temporary folder
    assert seen[-1].step < seen[-1].total


def test_the_default_set_is_deterministic_offline_photos_and_crops():
    first, second = sample_images(), sample_images()
    assert 100 <= len(first) <= 200 and first.digest == second.digest
    assert len({i.digest for i in first.images}) == len(first)
    a, b = first.images[1].load(), second.images[1].load()
    assert np.array_equal(a, b) and a.shape == (256, 256, 3)
    assert not np.array_equal(first.images[1].load(), first.images[2].load())
    assert first.images[0].name == "chelsea/whole.png" and min(first.images[0].load().shape[:2]) == 256


def test_a_zip_is_read_with_the_transfer_readers_safety_checks(chelsea):
    from explain.images import encode_png

    files = {"cat.png": encode_png(chelsea[:100, :100]), "deep/cat2.png": encode_png(chelsea[100:200, :100]),
             "../evil.png": encode_png(chelsea[:50, :50]), "readme.md": "hello"}
    photos = zip_images(zip_of(files), "cats.zip")
    assert [i.name for i in photos.images] == ["cat.png", "deep/cat2.png"]
    assert any("unsafe" in s for s in photos.skipped) and any("readme.md" in s for s in photos.skipped)
    assert np.array_equal(photos.images[1].load(), chelsea[100:200, :100])
    with pytest.raises(LensError, match="No images"):
        zip_images(zip_of({"a.txt": b"x"}), "empty.zip")


def test_queries_refuse_what_the_index_does_not_hold(built):
    index = built[0].index
    with pytest.raises(LensError, match="not in this index"):
        query_channel(index, "blocks.2.0.conv_pw", 0)
    with pytest.raises(LensError, match="channels 0..39"):
        query_channel(index, "blocks.2.0", 40)
    with pytest.raises(LensError, match="MAX_MICROSCOPE_TOP"):
        query_channel(index, "blocks.2.0", 0, k=MAX_MICROSCOPE_TOP + 1)
    assert len(query_channel(index, "blocks.2.0", 0, k=MAX_MICROSCOPE_TOP).top) == len(index)  # fewer photos than asked
    with pytest.raises(LensError, match="not a channel index"):
        open_index(built[0].path.parent)


def test_the_shared_cache_lives_where_the_environment_says_and_drops_the_oldest(lite0, monkeypatch, tmp_path, photo_dir):
    monkeypatch.setenv(store.INDEX_DIR_ENV, str(tmp_path / "cache"))
    photos = folder_images(photo_dir)
    photos_a = type(photos)("a", photos.images[:4])
    photos_b = type(photos)("b", photos.images[4:8])
    a = ensure_index(lite0, photos_a)
    b = ensure_index(lite0, photos_b)
    assert a.path.parent == b.path.parent == tmp_path / "cache" and a.path != b.path
    assert a.path.name.startswith("efficientnet_lite0-")
    assert ensure_index(lite0, photos_a).reused
    import os

    os.utime(a.path, (1, 1))  # a was used longest ago
    removed = store.prune_cache(keep=b.path, limit_mb=0)
    assert removed == [a.path] and b.path.exists()


@pytest.mark.parametrize("name", ["resnet18", "inception_v3", "googlenet", "xception"])
def test_other_architectures_index_their_main_layers_with_the_right_boxes(name, tmp_path):
    """Registry architectures without offline weights (random ones here): other layer names, input sizes, padding rules."""
    from explain.models import REGISTRY, Backbone
    from explain.models.backbone import prepare_for_viewing
    from explain.models.registry import build_architecture

    torch.manual_seed(0)
    backbone = Backbone(name, prepare_for_viewing(build_architecture(name)), [str(i) for i in range(1000)], REGISTRY[name].preprocess, torch.device("cpu"), "random", base=name)
    photos = sample_images(crops=1, photos=("chelsea", "rocket"))
    index = build_index(backbone, photos, tmp_path / "idx").index
    assert [li.name for li in index.layers] == [li.name for li in index_layers(backbone)] and index.inputs.shape[1] == REGISTRY[name].preprocess.input_size
    layer = index.layers[len(index.layers) // 2].name
    p = query_channel(index, layer, 1, k=1).top[0]
    prepared = prepare(photos.images[p.image].load(), backbone.preprocess)
    trace = trace_network(backbone.model, backbone.normalize(prepared.tensor))
    fmap = trace.outputs[layer][0, 1]
    assert p.value == pytest.approx(float(fmap.max()), abs=1e-4, rel=1e-4) and float(fmap[p.y, p.x]) == pytest.approx(p.value, abs=1e-4, rel=1e-4)
    assert p.box == receptive_field(trace, layer, p.y, p.x)

