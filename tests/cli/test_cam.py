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
