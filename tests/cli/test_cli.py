import json
import subprocess
import sys
from pathlib import Path

import pytest

from explain.cli import main
from explain.models import REGISTRY

from ..conftest import CAT_CLASSES, ROOT


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_json_lists_every_entry(capsys):
    code, out, _ = run_cli(capsys, "models", "--json")
    assert code == 0
    data = json.loads(out)
    assert [d["name"] for d in data] == list(REGISTRY)
    status = {d["name"]: d["status"] for d in data}
    assert all(status[f"efficientnet_lite{n}"] == "offline" for n in (0, 1, 2))
    assert all(s in ("offline", "cached", "file", "download") for s in status.values())


def test_classify_json_puts_a_cat_first(capsys, chelsea_png):
    code, out, _ = run_cli(capsys, "classify", str(chelsea_png), "--json", "--topk", "3")
    assert code == 0
    (record,) = json.loads(out)
    assert record["file"] == str(chelsea_png)
    assert len(record["top"]) == 3 and record["top"][0]["index"] in CAT_CLASSES
    assert set(record["top"][0]) == {"index", "label", "prob"}
    assert record["top"][0]["prob"] >= record["top"][1]["prob"]


def test_one_bad_file_does_not_lose_the_others(capsys, chelsea_png, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    code, out, err = run_cli(capsys, "classify", str(bad), str(chelsea_png), "--json")
    assert code == 1
    data = json.loads(out)
    assert [r["file"] for r in data] == [str(bad), str(chelsea_png)]
    assert "error" in data[0] and data[1]["top"][0]["index"] in CAT_CLASSES
    assert err.count("\n") == 1 and err.startswith("error:")


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "IMG", "--model", "no_such_net"],
        ["classify", "IMG", "--topk", "0"],
        ["features", "IMG", "--layer", "blocks.42"],
        ["classify", "IMG", "--interpolation", "smooth"],
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, chelsea_png, argv):
    argv = [str(chelsea_png) if a == "IMG" else a for a in argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error:") and err.count("\n") == 1


def test_features_writes_the_grid(capsys, chelsea_png, tmp_path):
    out_png = tmp_path / "grid.png"
    code, out, _ = run_cli(capsys, "features", str(chelsea_png), "--layer", "blocks.2.0", "--out", str(out_png), "--json")
    assert code == 0
    data = json.loads(out)
    assert data["layer"] == "blocks.2.0" and data["shape"] == [40, 28, 28]
    assert Path(data["out"]).read_bytes()[:4] == b"\x89PNG"
    code, out, _ = run_cli(capsys, "features", str(chelsea_png), "--json")
    assert code == 0 and any(layer["name"] == "bn2" for layer in json.loads(out)["layers"])


def test_summary_json(capsys):
    code, out, _ = run_cli(capsys, "summary", "--json")
    data = json.loads(out)
    assert code == 0 and data["total_params"] == data["trainable_params"] + data["frozen_params"]
    assert data["total_params"] == sum(layer["params"] for layer in data["layers"])


def test_real_process_bad_image_has_no_traceback(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    proc = subprocess.run(
        [sys.executable, "-m", "explain", "classify", str(empty), "--json"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "empty" in proc.stderr
    assert json.loads(proc.stdout)[0]["file"] == str(empty)
