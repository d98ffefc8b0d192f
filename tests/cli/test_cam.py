"""`cam` on the command line: an overlay PNG and the raw map, top-1 by default, user errors exit 2."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from explain.images import sample_image, save_png


def test_cli_cam_writes_overlay_and_map(tmp_path, capsys):
    from explain.cli import main

    photo = save_png(sample_image("chelsea"), tmp_path / "chelsea.png")
    out, raw = tmp_path / "overlay.png", tmp_path / "map.npy"
    code = main(["cam", str(photo), "--method", "gradcampp", "--target", "tabby", "--out", str(out), "--save-map", str(raw), "--json"])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert {"file", "method", "layer", "target_index", "out"} <= set(data)
    assert data["method"] == "gradcampp" and data["layer"] == "bn2" and data["target_index"] == 281
    assert data["out"] == str(out)
    overlay = cv2.imread(str(out))
    assert overlay.shape == (224, 224, 3)
    cam_map = np.load(raw)
    assert cam_map.shape == (224, 224) and cam_map.dtype == np.float32 and cam_map.max() == pytest.approx(1.0, abs=1e-4)

    assert main(["cam", str(photo), "--method", "nope"]) == 2
    assert main(["cam", str(photo), "--layer", "classifier"]) == 2
    assert "not a spatial map" in capsys.readouterr().err


def test_cli_cam_top1_by_default(tmp_path, capsys):
    from explain.cli import main

    photo = save_png(sample_image("coffee"), tmp_path / "coffee.png")
    assert main(["cam", str(photo), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "gradcam" and data["layer"] == "bn2"
    assert data["target_index"] == 967 and data["target_label"] == "espresso" and data["out"] is None


def test_cli_cam_every_method(tmp_path, capsys):
    """`cam --method M` for every method of the library's table (Score-CAM on a 192-channel layer to stay quick)."""
    from explain.cam import CAM_METHODS, LAYER_METHODS
    from explain.cli import main

    photo = save_png(sample_image("coffee"), tmp_path / "coffee.png")
    for method in CAM_METHODS:
        extra = {"scorecam": ["--layer", "blocks.5"], "integrated_gradients": ["--steps", "4"], "smoothgrad": ["--samples", "2"]}
        raw = tmp_path / f"{method}.npy"
        assert main(["cam", str(photo), "--method", method, "--save-map", str(raw), "--json", *extra.get(method, [])]) == 0, method
        data = json.loads(capsys.readouterr().out)
        assert data["method"] == method and data["target_index"] == 967
        assert data["layer"] == ("input" if method not in LAYER_METHODS else "blocks.5" if method == "scorecam" else "bn2")
        cam_map = np.load(raw)
        assert cam_map.shape == (224, 224) and np.isfinite(cam_map).all()
    assert main(["cam", str(photo), "--layer", "blocks.5+bn2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layer"] == "blocks.5+bn2"
    assert main(["cam", str(photo), "--method", "occlusion", "--patch", "0"]) == 2


def test_cli_trust_json(tmp_path, capsys):
    from explain.cli import main

    photo = save_png(sample_image("chelsea"), tmp_path / "chelsea.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    code = main(["trust", str(photo), "--methods", "gradcam,eigencam", "--no-road", "--steps", "4", "--json"])
    assert code == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert {"file", "class", "methods"} <= set(record) and record["class"] == "tiger cat"
    grad, eigen = record["methods"]
    assert {"method", "layer", "deletion_auc", "insertion_auc", "road", "random_deletion_auc", "randomisation", "class_sensitivity"} <= set(grad)
    assert grad["method"] == "gradcam" and grad["layer"] == "bn2" and grad["road"] is None
    assert 0 <= grad["deletion_auc"] <= 1 and 0 <= grad["random_deletion_auc"] <= 1
    assert [s["blocks_randomised"] for s in grad["randomisation"]] == list(range(1, 11))
    assert {"blocks_randomised", "spearman", "ssim"} <= set(grad["randomisation"][0])
    assert set(grad["class_sensitivity"]) >= {"other_class", "spearman"}
    assert eigen["class_sensitivity"]["spearman"] == pytest.approx(1.0)  # Eigen-CAM ignores the class

    code = main(["trust", str(photo), str(bad), "--methods", "saliency", "--no-road", "--no-randomisation", "--no-class-check", "--steps", "2", "--json"])
    assert code == 1  # one bad image of two: the good one is still reported
    records = json.loads(capsys.readouterr().out)
    assert "error" in records[1] and records[0]["methods"][0]["randomisation"] == [] and records[0]["methods"][0]["class_sensitivity"] is None
    assert main(["trust", str(photo), "--methods", "nope"]) == 2
