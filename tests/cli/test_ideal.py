"""`ideal` on the command line: JSON and a PNG for a class, a channel, and the user errors."""

import json

from explain.cli import main
from explain.images import read_image

from ..conftest import GOLDFISH


def test_cli_ideal_json_and_png(capsys, tmp_path):
    out = tmp_path / "goldfish.png"
    code = main(["ideal", "--target", "goldfish", "--method", "pixels", "--steps", "6", "--size", "64", "--tv", "0.1",
                 "--seed", "3", "--out", str(out), "--json"])
    stdout, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(stdout)
    assert set(data) == {"target_index", "target_name", "prob", "seconds", "out"}
    assert data["target_index"] == GOLDFISH and data["target_name"] == "goldfish" and data["out"] == str(out)
    assert 0 < data["prob"] <= 1 and data["seconds"] > 0
    assert read_image(out).shape == (64, 64, 3)


def test_cli_ideal_channel_and_errors(capsys):
    code = main(["ideal", "--layer", "blocks.2", "--channel", "3", "--steps", "2", "--size", "64", "--json"])
    stdout, _ = capsys.readouterr()
    assert code == 0
    data = json.loads(stdout)
    assert data["layer"] == "blocks.2" and data["channel"] == 3 and data["prob"] is None and data["out"] is None
    assert main(["ideal", "--layer", "blocks.2", "--steps", "2"]) == 2
    assert main(["ideal", "--target", "unicorn", "--steps", "2"]) == 2
    _, err = capsys.readouterr()
    assert err.count("error:") == 2
