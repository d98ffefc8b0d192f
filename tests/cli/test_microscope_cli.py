"""`python -m explain index` and `python -m explain microscope`: their JSON checked against the photos themselves."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from explain.cli import main
from explain.hooks import hooked
from explain.images import prepare, read_image, sample_image, save_png


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "astronaut", "rocket", "brick"):
        save_png(sample_image(name), root / ("textures" if name == "brick" else "") / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def index_json(photo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("idx") / "photos.index"
    code = main(["index", str(photo_dir), "--out", str(out), "--json"])
    assert code == 0
    return out


def test_index_then_microscope_gives_the_strongest_photos_and_their_patches(capsys, lite0, photo_dir, tmp_path):
    out = tmp_path / "idx"
    code, stdout, _ = run_cli(capsys, "index", str(photo_dir), "--out", str(out), "--json")
    assert code == 0
    built = json.loads(stdout)
    assert built["index"] == str(out) and built["model"] == "efficientnet_lite0" and built["images"] == 5 and not built["reused"]
    assert built["layers"][0] == {"name": "conv_stem", "type": "Conv2dSame", "shape": [32, 112, 112]} and len(built["layers"]) == 21
    assert built["size_bytes"] > 5 * 224 * 224 * 3
    code, stdout, _ = run_cli(capsys, "index", str(photo_dir), "--out", str(out), "--json")
    assert code == 0 and json.loads(stdout)["reused"]  # the same photos and network: found, not built again

    patches = tmp_path / "patches"
    code, stdout, _ = run_cli(capsys, "microscope", "--index", str(out), "--layer", "blocks.4.0", "--channel", "17", "--top", "3", "--out-dir", str(patches), "--json")
    assert code == 0
    data = json.loads(stdout)
    assert {"layer", "channel", "top"} <= set(data) and data["layer"] == "blocks.4.0" and data["channel"] == 17
    assert len(data["top"]) == 3 and sum(data["histogram"]["counts"]) == 5
    peaks = {}
    with torch.no_grad(), hooked(lite0.model, ["blocks.4.0"]) as rec:
        for f in sorted(photo_dir.rglob("*.png")):
            lite0.model(lite0.normalize(prepare(read_image(f), lite0.preprocess).tensor))
            peaks[str(f)] = float(rec["blocks.4.0"][0, 17].max())
    strongest = sorted(peaks, key=peaks.get, reverse=True)[:3]
    assert [row["file"] for row in data["top"]] == strongest  # the paths of the photos on disk, strongest first
    for row in data["top"]:
        assert row["value"] == pytest.approx(peaks[row["file"]], abs=1e-4)
        x0, y0, x1, y1 = row["box"]
        expected = prepare(read_image(row["file"]), lite0.preprocess).cropped[y0:y1, x0:x1]
        assert np.array_equal(read_image(row["patch"]), expected)  # the PNG is the network's input inside the box


def test_the_default_set_indexes_offline(capsys, tmp_path):
    code, stdout, _ = run_cli(capsys, "index", "--samples", "--layers", "blocks.2.0,bn2", "--out", str(tmp_path / "s"), "--json")
    assert code == 0
    data = json.loads(stdout)
    assert data["images"] == 160 and [li["name"] for li in data["layers"]] == ["blocks.2.0", "bn2"]
    code, stdout, _ = run_cli(capsys, "microscope", "--index", str(tmp_path / "s"), "--layer", "bn2", "--channel", "0", "--top", "2")
    assert code == 0 and stdout.count("/whole.png") + stdout.count("/crop") == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["index", "--json"], "exactly one of DIR"),
        (["index", "PHOTOS", "--samples"], "exactly one of DIR"),
        (["index", "/nonexistent/photos"], "neither a folder nor a .zip"),
        (["index", "PHOTOS", "--layers", "blocks.99"], "Unknown layer 'blocks.99'"),
        (["microscope", "--index", "PHOTOS", "--layer", "bn2", "--channel", "0"], "not a channel index"),
        (["microscope", "--index", "INDEX", "--layer", "nope", "--channel", "0"], "not in this index"),
        (["microscope", "--index", "INDEX", "--layer", "bn2", "--channel", "1280"], "channels 0..1279"),
        (["microscope", "--index", "INDEX", "--layer", "bn2", "--channel", "1", "--top", "0"], "1 to 64"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, photo_dir, index_json, argv, message):
    argv = [str(photo_dir) if a == "PHOTOS" else str(index_json) if a == "INDEX" else a for a in argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1 and out == ""


def test_index_refuses_to_write_over_a_folder_of_other_things_before_any_work(capsys, photo_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("keep me")
    code, out, err = run_cli(capsys, "index", str(photo_dir), "--out", str(tmp_path / "mine"))
    assert code == 2 and "is not a channel index" in err and (tmp_path / "mine" / "thesis.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no half-built folder left
