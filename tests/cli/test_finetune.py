"""`finetune` on the command line: a folder of Korean-named classes in, a model file out that `classify` reads."""

from __future__ import annotations

import io
import json
import unicodedata
from contextlib import redirect_stdout

from ..shared import demo_pngs


def test_cli_finetune_then_classify(tmp_path):
    from explain.cli import main

    pngs = demo_pngs("textures_ko", per_class=6)
    for subset, take in (("train", slice(0, 4)), ("val", slice(4, 6))):
        for cls, files in pngs.items():
            folder = tmp_path / "data" / subset / unicodedata.normalize("NFD", cls)
            folder.mkdir(parents=True)
            for i, data in enumerate(files[take]):
                (folder / f"{i}.png").write_bytes(data)
    (tmp_path / "data" / "train" / "README.txt").write_text("not an image")
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["finetune", str(tmp_path / "data"), "--epochs", "3", "--out", str(tmp_path / "m.pt"), "--json", "--device", "cpu"])
    assert code == 0
    data = json.loads(out.getvalue())
    assert {"classes", "val_acc", "test_acc", "per_class", "seconds", "out"} <= set(data)
    assert data["classes"] == sorted(["벽돌", "잔디", "자갈"]) and data["images"] == {"train": 12, "val": 6, "test": 0}
    assert data["split"] == "folders" and data["test_acc"] is None and 0 <= data["val_acc"] <= 1
    assert any("README.txt" in s for s in data["skipped"])
    assert data["head_init"] == "random" and data["class_map"] == {}  # Korean texture names are no ImageNet classes
    # no --strategy: the advisor chose, and says why; the user's --epochs wins over its number
    advice = data["advice"]
    assert data["strategy_requested"] == "auto" and data["strategy"] == advice["strategy"] in ("extract", "finetune")
    assert len(advice["reasons"]) >= 3 and 0 <= advice["probe_accuracy"] <= 1 and advice["sample_images"] == 12
    assert data["epochs"] == 3 + (advice["head_epochs"] if data["strategy"] == "finetune" else 0)
    assert data["input_size"] == advice["input_size"] == 96  # 64 px photos blown up 1.5x, not to 224
    img = tmp_path / "one.png"
    img.write_bytes(pngs["잔디"][5])
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["classify", str(img), "--model", data["out"], "--json", "--device", "cpu", "--topk", "3"]) == 0
    top = json.loads(out.getvalue())[0]["top"]
    assert {s["label"] for s in top} == {"벽돌", "잔디", "자갈"}


def test_cli_finetune_with_a_strategy_skips_the_advisor(tmp_path):
    from explain.cli import main

    for cls, files in demo_pngs("textures", per_class=5).items():
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i, data in enumerate(files):
            (tmp_path / "data" / cls / f"{i}.png").write_bytes(data)
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["finetune", str(tmp_path / "data"), "--strategy", "extract", "--epochs", "1", "--out", str(tmp_path / "m.pt"),
                     "--json", "--device", "cpu"])
    assert code == 0
    data = json.loads(out.getvalue())
    assert (data["strategy"], data["strategy_requested"], data["advice"]) == ("extract", "extract", None)
    assert data["input_size"] == 224 and data["epochs"] == 1
