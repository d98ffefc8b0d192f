"""`attack` on the command line: PNGs that classify as the target, user errors exit 2."""

import json

import pytest

from explain.cli import main
from explain.images import read_image

from ..conftest import GOLDEN_RETRIEVER


def test_cli_attack_writes_pngs_that_classify_as_the_target(capsys, tmp_path, chelsea_png, lite0):
    code = main(["attack", str(chelsea_png), "--target", "golden retriever", "--out-dir", str(tmp_path), "--json"])
    out, _ = capsys.readouterr()
    assert code == 0
    (record,) = json.loads(out)
    assert {"file", "out", "success", "before", "after", "linf", "l2", "psnr", "ssim", "seconds", "robust", "views_checked"} <= set(record)
    assert record["views_checked"] == {"own": 1, "torchvision": 1, "shifts": 25, "resize": 8, "jpeg90": 1}
    assert record["robust"]["own"] == 1.0 and record["robust"]["shifts"] >= 0.8
    assert record["success"] and record["after"][0]["index"] == GOLDEN_RETRIEVER and record["linf"] <= 2
    assert set(record["before"][0]) == {"index", "label", "prob"}
    code = main(["classify", record["out"], "--json", "--topk", "1"])
    (again,) = json.loads(capsys.readouterr()[0])
    assert code == 0 and again["top"][0]["index"] == GOLDEN_RETRIEVER
    assert read_image(record["out"]).shape == (256, 385, 3)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--untargeted", "--eps", "0"], "ε"),
        (["--untargeted", "--steps", "0"], "Steps"),
        (["--target", "no such animal"], "Unknown class"),
    ],
)
def test_cli_attack_user_errors_exit_2(capsys, chelsea_png, tmp_path, argv, words):
    code = main(["attack", str(chelsea_png), "--out-dir", str(tmp_path), *argv])
    _, err = capsys.readouterr()
    assert code == 2 and words in err and err.count("\n") == 1
