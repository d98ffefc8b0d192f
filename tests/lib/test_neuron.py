"""One neuron explained (explain/neuron.py, explain/receptive.py) and the network overview (explain/overview.py).

The arithmetic must add up to the value the forward hook recorded, and the receptive-field box must hold every
input pixel whose gradient on the neuron is not zero: checked on real weights of every offline backbone and on a
small network with the layer kinds those lack (dilation, max pooling, grouped convolutions with bias, a
concatenation, a squeeze-excite gate).
"""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest
import torch
from torch import nn

from explain.errors import LensError
from explain.hooks import hook_count
from explain.neuron import explain_neuron, neuron_json, term_grids
from explain.receptive import effective_receptive_field, receptive_field, trace_network

OFFLINE = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
TOL = 1e-4


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOL * max(1.0, abs(b))


@pytest.fixture(scope="module", params=OFFLINE)
def traced(request, lite0, chelsea):
    from explain.images import prepare
    from explain.models import load_backbone

    backbone = lite0 if request.param == "efficientnet_lite0" else load_backbone(request.param, device="cpu")
    x = backbone.normalize(prepare(chelsea, backbone.preprocess).tensor)
    return backbone, x, trace_network(backbone.model, x)


def _layers(backbone):
    from explain.featuremaps import probe_layers

    return probe_layers(backbone).layers


def test_the_arithmetic_adds_up_to_the_recorded_value_on_every_layer_type(traced):
    backbone, _, trace = traced
    rng = random.Random(7)
    by_type: dict[str, list] = {}
    for li in _layers(backbone):
        by_type.setdefault(li.type, []).append(li)
    seen_kinds, seen_steps = set(), set()
    for layer_type, layers in by_type.items():
        for li in rng.sample(layers, min(4, len(layers))):
            c, h, w = li.shape
            for _ in range(3):
                neuron = (rng.randrange(c), rng.randrange(h), rng.randrange(w))
                a = explain_neuron(trace, li.name, *neuron)
                assert a.value == float(trace.outputs[li.name][0][neuron])  # the hook's own number
                assert a.explained, (li.name, layer_type)
                assert close(a.result, a.value), (li.name, layer_type, a.kind, a.result, a.value)
                assert close(sum(t.product for t in a.terms), a.products_sum) or a.reduce == "max"
                seen_kinds.add(a.kind)
                seen_steps.update(s.name for s in a.steps)
    assert {"conv", "depthwise", "pointwise", "avgpool"} <= seen_kinds
    assert {"batch norm", "ReLU6", "+ shortcut"} <= seen_steps
    assert {"Conv2dSame", "Conv2d", "BatchNormAct2d", "InvertedResidual", "DepthwiseSeparableConv", "AdaptiveAvgPool2d"} <= set(by_type)


def test_the_terms_are_the_layers_real_input_and_weights(traced):
    """Each term's input is the recorded input of the convolution at that position; each weight is the kernel's."""
    backbone, _, trace = traced
    a = explain_neuron(trace, "blocks.2.0.conv_dw", 5, 3, 4)  # a strided depthwise 5×5 convolution
    conv = trace.modules["blocks.2.0.conv_dw"]
    x = trace.inputs["blocks.2.0.conv_dw"][0]
    assert a.kind == "depthwise" and a.window == (1, *conv.kernel_size) and {t.channel for t in a.terms} == {5}
    for t in a.terms:
        assert t.weight == pytest.approx(float(conv.weight[5, 0, t.ky, t.kx].detach()))
        assert t.input == (0.0 if t.padding else pytest.approx(float(x[5, t.y, t.x])))
    inputs, weights, products = term_grids(a)
    assert np.allclose(inputs * weights, products)
    b = explain_neuron(trace, "bn2", 10, 2, 3)  # batch norm of a 1×1 convolution: the strongest terms first
    assert b.kind == "pointwise" and b.source == "conv_head" and len(b.terms) == trace.modules["conv_head"].in_channels
    magnitudes = [abs(t.product) for t in b.terms]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert [s.name for s in b.steps][:1] == ["batch norm"] and close(b.result, b.value)


def test_the_receptive_field_holds_every_pixel_with_a_gradient(traced):
    backbone, x, trace = traced
    rng = random.Random(3)
    widths = []
    for li in (li for li in _layers(backbone) if li.main):
        c, h, w = li.shape
        y, xpos = rng.randrange(h), rng.randrange(w)
        fmap = trace.outputs[li.name][0]
        channel = int(fmap[:, y, xpos].argmax())  # the strongest channel there: alive, so its gradient is not zero
        box = receptive_field(trace, li.name, y, xpos)
        field = effective_receptive_field(backbone.model, x, li.name, channel, y, xpos)
        assert field.value == pytest.approx(float(fmap[channel, y, xpos]), abs=1e-4)
        reached = np.argwhere(field.weights > 0)
        if len(reached):
            (y0, x0), (y1, x1) = reached.min(0), reached.max(0) + 1
            assert box[0] <= x0 and box[1] <= y0 and x1 <= box[2] and y1 <= box[3], (li.name, box, (x0, y0, x1, y1))
            if li.name == "conv_stem":  # the first convolution reaches exactly its 3×3 window
                assert (x0, y0, x1, y1) == box and box[2] - box[0] <= 3
        cy, cx = h // 2, w // 2
        centre = receptive_field(trace, li.name, cy, cx)
        widths.append(centre[2] - centre[0])
    assert widths == sorted(widths) and widths[0] == 3 and widths[-1] == x.shape[-1]  # the box grows layer by layer
    assert hook_count(backbone.model) == 0


def test_the_effective_field_is_a_distribution_inside_the_box(lite0, chelsea):
    from explain.images import prepare

    x = lite0.normalize(prepare(chelsea, lite0.preprocess).tensor)
    trace = trace_network(lite0.model, x)
    box = receptive_field(trace, "blocks.2.1", 14, 14)
    fmap = trace.outputs["blocks.2.1"][0]
    field = effective_receptive_field(lite0.model, x, "blocks.2.1", int(fmap[:, 14, 14].argmax()), 14, 14)
    assert field.weights.sum() == pytest.approx(1.0, abs=1e-5)
    b = field.box90
    assert box[0] <= b[0] and box[1] <= b[1] and b[2] <= box[2] and b[3] <= box[3]
    assert (b[2] - b[0]) < (box[2] - box[0])  # the mass lies near the centre: a smaller square holds 90% of it
    assert field.weights[b[1] : b[3], b[0] : b[2]].sum() >= 0.9 - 1e-6


class _Toy(nn.Module):
    """Layer kinds the offline backbones lack: dilation, max/avg pooling, groups with bias, cat, a squeeze-excite gate."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=True)
        self.act = nn.SiLU()
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, bias=True)
        self.side = nn.Conv2d(8, 4, 1)
        self.avg = nn.AvgPool2d(2, stride=2, count_include_pad=False)
        self.gate = nn.Conv2d(12, 12, 1)
        self.after_gate = nn.ReLU()

    def forward(self, x):
        x = self.pool(self.act(self.stem(x)))
        x = torch.cat([self.dilated(x), self.side(x)], 1)  # a concatenation: no module
        x = self.avg(x)
        return self.after_gate(x * torch.sigmoid(self.gate(x.mean((2, 3), keepdim=True))))  # squeeze-excite


def test_a_small_network_with_other_layer_kinds():
    torch.manual_seed(0)
    model = _Toy().eval()
    x = torch.randn(1, 3, 37, 41)
    trace = trace_network(model, x)
    rng = random.Random(0)
    for layer in ("stem", "act", "pool", "dilated", "side", "avg"):
        out = trace.outputs[layer][0]
        for _ in range(6):
            neuron = (rng.randrange(out.shape[0]), rng.randrange(out.shape[1]), rng.randrange(out.shape[2]))
            a = explain_neuron(trace, layer, *neuron)
            assert close(a.result, a.value), (layer, a.kind, a.result, a.value)
            pixels = x.clone().requires_grad_(True)
            with torch.enable_grad():
                reached = _reached(model, pixels, layer, neuron)
            box = receptive_field(trace, layer, neuron[1], neuron[2])
            if len(reached):
                (y0, x0), (y1, x1) = reached.min(0), reached.max(0) + 1
                assert box[0] <= x0 and box[1] <= y0 and x1 <= box[2] and y1 <= box[3], (layer, box, (x0, y0, x1, y1))
    assert explain_neuron(trace, "dilated", 5, 2, 2).kind == "grouped"
    assert explain_neuron(trace, "pool", 0, 1, 1).kind == "maxpool"
    assert explain_neuron(trace, "avg", 0, 1, 1).kind == "avgpool"
    # the gate makes every position depend on the whole input: the box of the last layer is all of it
    assert receptive_field(trace, "after_gate", 0, 0) == (0, 0, 41, 37)
    # worked out by hand: stem 3×3/2 pad 1, max pool 3×3/2 pad 1, 3×3 dilation 2 pad 2, avg pool 2×2/2
    assert receptive_field(trace, "avg", 0, 0) == (0, 0, 16, 16)


def _reached(model, pixels, layer, neuron) -> np.ndarray:
    from explain.hooks import hooked

    with hooked(model, [layer], keep_grad=True) as outs:
        model(pixels)
    (grad,) = torch.autograd.grad(outs[layer][0][neuron], pixels)
    return np.argwhere(grad[0].abs().sum(0).numpy() > 0)


def test_my_model_a_new_head_on_lite0(lite0, chelsea):
    from explain.images import prepare
    from explain.models import Backbone

    model = copy.deepcopy(lite0.model)
    model.classifier = nn.Linear(model.classifier.in_features, 2)
    mine = Backbone("my model", model.eval(), ["ants", "bees"], lite0.preprocess, lite0.device, "trained", base="efficientnet_lite0")
    x = mine.normalize(prepare(chelsea, mine.preprocess).tensor)
    trace = trace_network(mine.model, x)
    assert trace.logits.shape == (1, 2)
    for layer, neuron in (("blocks.3.1", (7, 5, 6)), ("global_pool.pool", (100, 0, 0))):
        a = explain_neuron(trace, layer, *neuron)
        assert close(a.result, a.value)


def test_a_wrong_neuron_says_what_exists(lite0, chelsea):
    from explain.images import prepare

    trace = trace_network(lite0.model, lite0.normalize(prepare(chelsea, lite0.preprocess).tensor))
    with pytest.raises(LensError, match="Unknown layer"):
        explain_neuron(trace, "blocks.99", 0, 0, 0)
    with pytest.raises(LensError, match="channels 0..23"):
        explain_neuron(trace, "blocks.1.0", 24, 0, 0)
    with pytest.raises(LensError, match="outside layer"):
        explain_neuron(trace, "blocks.1.0", 0, 56, 0)
    with pytest.raises(LensError, match="exactly one image"):
        trace_network(lite0.model, torch.zeros(2, 3, 32, 32))
    # TensorFlow "same" padding of a stride-2 layer on 224 pixels: one row and column, all on the far side
    assert neuron_json(explain_neuron(trace, "conv_stem", 0, 0, 0))["receptive_field"] == [0, 0, 3, 3]
    last = explain_neuron(trace, "conv_stem", 0, 111, 111)
    data = neuron_json(last)
    assert data["receptive_field"] == [222, 222, 224, 224]
    assert len(data["terms"]) == 27 and sum(t.padding for t in last.terms) == 3 * 5 and close(data["sum"], data["value"])


# ---------------------------------------------------------------- the overview


def test_the_overview_shows_each_main_layers_strongest_channels(lite0, chelsea):
    from explain.featuremaps import record_image, top_channels
    from explain.images import prepare
    from explain.limits import MAX_OVERVIEW_CHANNELS
    from explain.overview import network_overview

    prepared = prepare(chelsea, lite0.preprocess)
    recording = record_image(lite0, prepared.tensor)
    overview = network_overview(recording, prepared.cropped, lite0.categories, channels=4)
    assert [c.layer for c in overview.columns] == [li.name for li in recording.layers if li.main]
    assert overview.columns[0].layer == "conv_stem" and overview.columns[-1].vector
    for col in overview.columns:
        assert list(col.channels) == top_channels(recording.maps[col.layer], 4)
    assert overview.top[0].index in range(281, 286)  # Chelsea is a cat
    assert sum(r.prob for r in overview.top) <= 1.0
    col = 5
    top, left, h, w = overview.tile_box(col, 2)
    assert overview.thumbnail_at(left + w / 2, top + h / 2) == (overview.columns[col].layer, overview.columns[col].channels[2])
    assert overview.thumbnail_at(left - 1, top) is None  # the gap between two columns
    tile = overview.image[top : top + h, left : left + w]
    assert tile.std() > 0  # a real map, not the white background
    with pytest.raises(LensError, match=str(MAX_OVERVIEW_CHANNELS)):
        network_overview(recording, prepared.cropped, lite0.categories, channels=MAX_OVERVIEW_CHANNELS + 1)
