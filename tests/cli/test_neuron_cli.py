"""`python -m explain neuron` and `python -m explain overview`: their JSON checked against the library."""

import json

import pytest

from explain.cli import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def chelsea_trace(lite0, chelsea):
    from explain.images import prepare
    from explain.receptive import trace_network

    return trace_network(lite0.model, lite0.normalize(prepare(chelsea, lite0.preprocess).tensor))


def test_neuron_json_adds_up_to_the_recorded_value(capsys, chelsea_png, chelsea_trace):
    code, out, _ = run_cli(capsys, "neuron", str(chelsea_png), "--layer", "blocks.1.0", "--channel", "3", "--y", "10", "--x", "12", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"value", "receptive_field", "terms", "sum", "steps"} <= set(data)
    recorded = float(chelsea_trace.outputs["blocks.1.0"][0, 3, 10, 12])  # the PNG round trip keeps the pixels
    assert data["value"] == pytest.approx(recorded, abs=1e-5)
    assert abs(data["sum"] - data["value"]) <= 1e-4 * max(1, abs(data["value"]))
    assert data["kind"] == "pointwise" and data["source"] == "blocks.1.0.conv_pwl" and len(data["terms"]) == 96
    products = sum(t["product"] for t in data["terms"])
    assert products == pytest.approx(data["products_sum"], abs=1e-6)
    assert [s["name"] for s in data["steps"]] == ["batch norm"]  # blocks.1.0 narrows 16 -> 24 channels: no shortcut
    x0, y0, x1, y1 = data["receptive_field"]
    assert (x1 - x0, y1 - y0) == (11, 11) and x0 <= 12 * 4 < x1 and y0 <= 10 * 4 < y1
    b = data["effective_receptive_field"]["box90"]
    assert x0 <= b[0] and y0 <= b[1] and b[2] <= x1 and b[3] <= y1


def test_neuron_defaults_to_the_strongest_channel_at_its_peak(capsys, chelsea_png, chelsea_trace):
    from explain.featuremaps import top_channels

    code, out, _ = run_cli(capsys, "neuron", str(chelsea_png), "--layer", "conv_stem", "--terms", "5", "--json")
    assert code == 0
    data = json.loads(out)
    fmap = chelsea_trace.outputs["conv_stem"][0]
    assert data["channel"] == top_channels(fmap, 1)[0]
    assert data["value"] == pytest.approx(float(fmap[data["channel"]].max()), abs=1e-5)
    assert len(data["terms"]) == 5 and data["terms_total"] == 27 and data["window"] == [3, 3, 3]


def test_neuron_text_and_mistakes(capsys, chelsea_png):
    code, out, _ = run_cli(capsys, "neuron", str(chelsea_png), "--layer", "bn1", "--channel", "0", "--y", "5", "--x", "5")
    assert code == 0 and "receptive field: x 10..12, y 10..12" in out and "batch norm" in out and "ReLU6" in out
    for argv, message in (
        (["--layer", "nope"], "Unknown layer 'nope'"),
        (["--layer", "bn1", "--channel", "32"], "channels 0..31"),
        (["--layer", "bn1", "--channel", "0", "--y", "112", "--x", "0"], "outside layer"),
    ):
        code, _, err = run_cli(capsys, "neuron", str(chelsea_png), *argv)
        assert code == 2 and message in err and err.count("\n") == 1


def test_overview_json_and_picture(capsys, chelsea_png, tmp_path, lite0, chelsea):
    from explain.featuremaps import record_image, top_channels
    from explain.images import prepare, read_image

    out_png = tmp_path / "overview.png"
    code, out, _ = run_cli(capsys, "overview", str(chelsea_png), "--channels", "3", "--out", str(out_png), "--json")
    assert code == 0
    data = json.loads(out)
    recording = record_image(lite0, prepare(chelsea, lite0.preprocess).tensor)
    assert [d["name"] for d in data["layers"]] == [li.name for li in recording.layers if li.main]
    for d in data["layers"]:
        assert d["channels"] == top_channels(recording.maps[d["name"]], 3)
    assert data["top"][0]["index"] in range(281, 286)
    assert read_image(str(out_png)).shape[1] > 20 * 48  # one picture, a column per main layer
    code, _, err = run_cli(capsys, "overview", str(chelsea_png), "--channels", "99")
    assert code == 2 and "1 to 16" in err
