"""Every CLI verb, given out-of-range numbers and unknown names: exit 2, one line on stderr, no traceback, nothing on stdout."""

import io

import pytest
from PIL import Image

from explain.cli import common as cli_common
from explain.cli import main

IMG, DATA = "IMG", "DATA"  # replaced by a real photo / a real two-class folder

CASES = [
    # models / summary: no class or number, but the model and device names
    ["models", "--bogus"],
    ["summary", "--model", "not-a-net"],
    ["summary", "--model", "missing/weights.pth"],
    ["summary", "--device", "quantum"],
    # classify
    ["classify", IMG, "--topk", "0"],
    ["classify", IMG, "--topk", "-1"],
    ["classify", IMG, "--topk", "many"],
    ["classify", IMG, "--model", "not-a-net"],
    # features
    ["features", IMG, "--layer", "no.such.layer"],
    ["features", IMG, "--layer", "blocks.99"],
    ["features", IMG, "--layer", "blocks.2", "--cmap", "rainbow-unicorn"],
    ["features", IMG, "--channels", "lots"],
    # cam
    ["cam", IMG, "--target", "1000"],
    ["cam", IMG, "--target", "-1"],
    ["cam", IMG, "--target", "99999"],
    ["cam", IMG, "--target", "not-a-class"],
    ["cam", IMG, "--layer", "no.such.layer"],
    ["cam", IMG, "--method", "deepdream"],
    ["cam", IMG, "--method", "smoothgrad", "--samples", "0"],
    ["cam", IMG, "--method", "smoothgrad", "--samples", "99999"],
    ["cam", IMG, "--alpha", "7"],
    # ideal
    ["ideal", "--target", "1000", "--steps", "1"],
    ["ideal", "--target", "-1", "--steps", "1"],
    ["ideal", "--target", "99999", "--steps", "1"],
    ["ideal", "--target", "not-a-class", "--steps", "1"],
    ["ideal", "--layer", "no.such.layer", "--channel", "0", "--steps", "1"],
    ["ideal", "--layer", "blocks.2", "--channel", "99999", "--steps", "1"],
    ["ideal", "--layer", "blocks.2", "--channel", "-1", "--steps", "1"],
    ["ideal", "--layer", "blocks.2", "--steps", "1"],
    ["ideal", "--steps", "0"],
    ["ideal", "--steps", "99999"],
    ["ideal", "--size", "5000", "--steps", "1"],
    ["ideal", "--size", "4", "--steps", "1"],
    ["ideal", "--lr", "-1", "--steps", "1"],
    ["ideal", "--tv", "-1", "--steps", "1"],
    # attack
    ["attack", IMG, "--target", "1000"],
    ["attack", IMG, "--target", "-1"],
    ["attack", IMG, "--target", "99999"],
    ["attack", IMG, "--target", "not-a-class"],
    ["attack", IMG, "--untargeted", "--steps", "0"],
    ["attack", IMG, "--untargeted", "--steps", "99999"],
    ["attack", IMG, "--untargeted", "--eps", "0"],
    ["attack", IMG, "--untargeted", "--eps", "1000"],
    ["attack", IMG, "--untargeted", "--topk", "0"],
    ["attack", IMG, "--untargeted", "--confidence", "1.5"],
    ["attack", IMG, "--untargeted", "--leak", "-1"],
    ["attack", IMG, "--untargeted", "--leak", "nan"],
    ["attack", IMG, "--untargeted", "--method", "deepfool"],
    ["attack", IMG],
    # finetune
    ["finetune", DATA, "--epochs", "0"],
    ["finetune", DATA, "--epochs", "99999"],
    ["finetune", DATA, "--strategy", "finetune", "--head-epochs", "99999"],
    ["finetune", DATA, "--strategy", "finetune", "--head-epochs", "-1"],
    ["finetune", DATA, "--strategy", "finetune", "--unfreeze", "99"],
    ["finetune", DATA, "--strategy", "finetune", "--unfreeze", "0"],
    ["finetune", DATA, "--batch-size", "1"],
    ["finetune", DATA, "--val-fraction", "1.5"],
    ["finetune", DATA, "--lr", "0"],
    ["finetune", DATA, "--model", "not-a-net"],
    ["finetune", DATA, "--test-dir", "no/such/folder"],
    ["finetune", "no/such/folder"],
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, chelsea):
    """Two classes of five small photos each: enough for the dataset checks, trained on by no case."""
    root = tmp_path_factory.mktemp("data")
    for cls, (top, left) in {"cat": (0, 0), "wall": (200, 300)}.items():
        (root / cls).mkdir()
        for i in range(5):
            crop = chelsea[top + i * 5 : top + i * 5 + 48, left : left + 48]
            buf = io.BytesIO()
            Image.fromarray(crop).save(buf, format="PNG")
            (root / cls / f"{i}.png").write_bytes(buf.getvalue())
    return root


@pytest.fixture
def shared_model(monkeypatch, lite0):
    """The default model is the session's real EfficientNet-Lite0 (loaded once); every other name goes the normal way."""
    load = cli_common.load

    def load_once(args):
        if args.model == "efficientnet_lite0" and args.device is None:
            return lite0
        return load(args)

    monkeypatch.setattr(cli_common, "load", load_once)


@pytest.mark.parametrize("argv", CASES, ids=lambda a: " ".join(a))
def test_out_of_range_and_unknown_names_exit_2_with_one_line(capsys, chelsea_png, data_dir, tmp_path, shared_model, argv):
    argv = [str(chelsea_png) if a == IMG else str(data_dir) if a == DATA else a for a in argv]
    if argv[0] == "attack":
        argv += ["--out-dir", str(tmp_path)]
    if argv[0] == "finetune":
        argv += ["--out", str(tmp_path / "model.pt")]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    assert out == "" and "Traceback" not in err
    assert err.startswith("error: ") and err.count("\n") == 1 and len(err) > 20, err
    assert not list(tmp_path.iterdir())  # nothing half-made was written


def test_class_and_steps_messages_name_the_range(capsys, chelsea_png, tmp_path, shared_model):
    main(["attack", str(chelsea_png), "--target", "1000", "--out-dir", str(tmp_path)])
    assert "0..999" in capsys.readouterr().err
    main(["ideal", "--steps", "99999"])
    assert "2000" in capsys.readouterr().err
    main(["cam", str(chelsea_png), "--method", "smoothgrad", "--samples", "99999"])
    assert "50" in capsys.readouterr().err


def test_help_still_exits_0(capsys):
    assert main(["ideal", "--help"]) == 0
    assert "--channel" in capsys.readouterr().out
