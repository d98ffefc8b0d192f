"""One neuron, explained: the arithmetic that made its value, on the real numbers of one forward pass.

A neuron is (layer, channel, y, x). Its value is rebuilt from what the layer read (`NetworkTrace`): for a
convolution, the input window times the kernel, summed, plus the bias; a depthwise convolution reads one input
channel, a 1×1 convolution weighs every channel at one position. Layers that act on one number at a time (batch
norm, an activation) are steps after the convolution that fed them, and a residual block adds its input at the
end. Every number shown is float64 arithmetic on the recorded float32 tensors, so the result equals the value
the forward hook recorded up to rounding (the tests hold it to 1e-4 on every layer type of the offline backbones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from explain.errors import LensError
from explain.receptive import ADAPTIVE_POOLS, POOLS, Box, NetworkTrace, padded_window, receptive_field

ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.Mish,
)
PASS_THROUGH = (nn.Identity, nn.Dropout, nn.Dropout2d)  # in eval mode they hand on their input
FORMULAS = {
    "ReLU": "max(v, 0)",
    "ReLU6": "min(max(v, 0), 6)",
    "SiLU": "v · sigmoid(v)",
    "Sigmoid": "1 / (1 + e^−v)",
    "Hardswish": "v · min(max(v + 3, 0), 6) / 6",
    "Hardsigmoid": "min(max(v + 3, 0), 6) / 6",
    "Tanh": "tanh(v)",
    "GELU": "v · Φ(v)",
}
MAX_TERMS = 4096  # a 3×3 convolution over 512 channels; larger windows are summed but not listed one by one


@dataclass(frozen=True)
class Term:
    """One input number times one weight."""

    channel: int  # input channel
    ky: int  # row and column in the kernel
    kx: int
    y: int  # row and column in the layer's input map; -1 where the window reads padding
    x: int
    input: float
    weight: float
    product: float

    @property
    def padding(self) -> bool:
        return self.y < 0 or self.x < 0


@dataclass(frozen=True)
class Step:
    """One operation after the sum: its name, the numbers it used, the value after it."""

    name: str  # "bias", "batch norm", "ReLU6", "+ shortcut", …
    detail: str  # the formula with this neuron's numbers
    value: float


@dataclass(frozen=True)
class NeuronArithmetic:
    """How the value of (layer, channel, y, x) was computed, from its window's terms to the recorded value."""

    layer: str
    channel: int
    y: int
    x: int
    value: float  # as the forward hook recorded it
    kind: str  # conv | depthwise | pointwise | grouped | avgpool | maxpool | elementwise | unexplained
    source: str  # the layer whose window the terms come from ("" when none)
    source_type: str
    input_layer: str  # the layer that made the source's input ("" for the image or an operation)
    window: tuple[int, int, int]  # (channels, kh, kw) of the terms in network order (before any sorting)
    terms: tuple[Term, ...]  # conv: products in network order; pointwise: strongest |product| first
    reduce: str  # how the terms combine: "sum", "mean" or "max"
    products_sum: float  # the terms combined
    steps: tuple[Step, ...]
    stride: tuple[int, int]
    kernel: tuple[int, int]
    receptive_field: Box | None

    @property
    def result(self) -> float:
        """What the shown arithmetic adds up to (equals `value` up to float32 rounding)."""
        return self.steps[-1].value if self.steps else self.products_sum

    @property
    def explained(self) -> bool:
        return self.kind != "unexplained"


def _f(v: float) -> str:
    return f"{v:.6g}"


def _conv_kind(conv: nn.Conv2d) -> str:
    per_group = conv.in_channels // conv.groups
    if per_group == 1 and conv.groups > 1:
        return "depthwise"
    if conv.groups > 1:
        return "grouped"
    return "pointwise" if tuple(conv.kernel_size) == (1, 1) else "conv"


def _window_terms(module: nn.Module, x: torch.Tensor, channel: int, y: int, xpos: int) -> tuple:
    """Terms of a convolution or pooling window: (terms, channels, reduce, combined, kind)."""
    window, rows, cols = padded_window(module, x, y, xpos)
    if isinstance(module, nn.Conv2d):
        out_per_group = module.out_channels // module.groups
        per_group = module.in_channels // module.groups
        first = (channel // out_per_group) * per_group
        channels = list(range(first, first + per_group))
        inputs = window[first : first + per_group].double().numpy()
        weights = module.weight[channel].detach().double().cpu().numpy()
        kind, reduce = _conv_kind(module), "sum"
    else:
        channels = [channel]
        inputs = window[channel : channel + 1].double().numpy()
        if isinstance(module, nn.MaxPool2d):
            weights, kind, reduce = np.ones_like(inputs), "maxpool", "max"
        else:
            divisor = module.divisor_override or (inputs.size if module.count_include_pad else int(((rows >= 0)[:, None] & (cols >= 0)[None]).sum()))
            weights, kind, reduce = np.full_like(inputs, 1.0 / divisor), "avgpool", "sum"
    products = inputs * weights
    combined = float(inputs.max()) if reduce == "max" else math.fsum(products.ravel().tolist())
    terms = []
    if products.size <= MAX_TERMS:
        for ci, c in enumerate(channels):
            for ky, r in enumerate(rows):
                for kx, col in enumerate(cols):
                    pad = r < 0 or col < 0
                    terms.append(Term(c, ky, kx, -1 if pad else int(r), -1 if pad else int(col), float(inputs[ci, ky, kx]), float(weights[ci, ky, kx]), float(products[ci, ky, kx])))
    return terms, (len(channels), len(rows), len(cols)), reduce, combined, kind


def _adaptive_terms(module: nn.Module, x: torch.Tensor, channel: int, y: int, xpos: int) -> tuple:
    _, h, w = x.shape
    oh, ow = _pair_size(module.output_size, (h, w))
    y0, y1 = (y * h) // oh, -((-(y + 1) * h) // oh)
    x0, x1 = (xpos * w) // ow, -((-(xpos + 1) * w) // ow)
    values = x[channel, y0:y1, x0:x1].double().numpy()
    n = values.size
    if isinstance(module, nn.AdaptiveMaxPool2d):
        weight, reduce, kind, combined = 1.0, "max", "maxpool", float(values.max())
    else:
        weight, reduce, kind = 1.0 / n, "sum", "avgpool"
        combined = math.fsum((values * weight).ravel().tolist())
    terms = [Term(channel, r - y0, c - x0, r, c, float(values[r - y0, c - x0]), weight, float(values[r - y0, c - x0] * weight))
             for r in range(y0, y1) for c in range(x0, x1)][:MAX_TERMS]
    return terms, (1, y1 - y0, x1 - x0), reduce, combined, kind


def _pair_size(size, full: tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return tuple(full[i] if s is None else int(s) for i, s in enumerate(size))


def _activation_step(act: nn.Module, v: float) -> Step:
    name = type(act).__name__
    out = float(act(torch.tensor([[[[v]]]], dtype=torch.float64)).reshape(-1)[0])
    formula = FORMULAS.get(name, f"{name}(v)")
    return Step(name, f"{formula.replace('v', _f(v))} = {_f(out)}" if name in ("ReLU", "ReLU6") else f"{formula}, v = {_f(v)}", out)


def _batch_norm_step(bn: nn.BatchNorm2d, c: int, v: float) -> Step:
    if bn.training or bn.running_mean is None:
        raise LensError("Batch norm in training mode uses the batch's own statistics: put the model in eval mode.")
    mean, var = float(bn.running_mean[c]), float(bn.running_var[c])
    gamma = float(bn.weight[c].detach()) if bn.weight is not None else 1.0
    beta = float(bn.bias[c].detach()) if bn.bias is not None else 0.0
    out = (v - mean) / math.sqrt(var + bn.eps) * gamma + beta
    return Step("batch norm", f"({_f(v)} − μ {_f(mean)}) / √(σ² {_f(var)} + ε {bn.eps:g}) · γ {_f(gamma)} + β {_f(beta)}", out)


class _Builder:
    """Walks back from a layer through the element-wise layers that fed it to the window (convolution, pooling)."""

    def __init__(self, trace: NetworkTrace, channel: int, y: int, x: int):
        self.trace, self.c, self.y, self.x = trace, channel, y, x
        self.core: dict = {}
        self.steps: list[Step] = []

    def value_of(self, name: str) -> float:
        return float(self.trace.outputs[name][0, self.c, self.y, self.x])

    def start(self, name: str) -> float:
        """Fill core/steps so that they end at `name`'s output; returns that value as computed."""
        module = self.trace.modules[name]
        x = self.trace.inputs.get(name)
        out = self.trace.outputs[name]
        if isinstance(module, nn.BatchNorm2d):  # timm's BatchNormAct2d also applies its activation
            v = self._before(x)
            self.steps.append(_batch_norm_step(module, self.c, v))
            act = getattr(module, "act", None)
            if act is not None and not isinstance(act, nn.Identity):
                self.steps.append(_activation_step(act, self.steps[-1].value))
            return self.steps[-1].value
        if isinstance(module, PASS_THROUGH):
            return self._before(x)
        producer = self.trace.producer_of(out)
        if producer is not None and producer != name:  # a block that hands on a member's output
            return self.start(producer)
        if isinstance(module, nn.Conv2d):
            return self._window(name, module, x, _window_terms, bias=module.bias)
        if isinstance(module, POOLS):
            return self._window(name, module, x, _window_terms)
        if isinstance(module, ADAPTIVE_POOLS):
            return self._window(name, module, x, _adaptive_terms)
        if isinstance(module, ACTIVATIONS):
            v = self._before(x)
            self.steps.append(_activation_step(module, v))
            return self.steps[-1].value
        residual = getattr(module, "has_skip", None)
        if residual is None:
            residual = getattr(module, "use_res_connect", None)
        if residual and x is not None and x.shape == out.shape:
            branch = self._last_member_output(name, out.shape)
            if branch is not None:
                v = self.start(branch)
                skip = float(x[0, self.c, self.y, self.x])
                self.steps.append(Step("+ shortcut", f"{_f(v)} + {_f(skip)} (the block's input at this position)", v + skip))
                return self.steps[-1].value
        raise _Unexplained(name)

    def _before(self, x: torch.Tensor | None) -> float:
        """The value an element-wise layer read: rebuilt from the layer that made it, or as recorded."""
        if x is None:
            raise _Unexplained("")
        recorded = float(x[0, self.c, self.y, self.x])
        producer = self.trace.producer_of(x)
        if producer is None:
            self.steps.append(Step("input", f"{_f(recorded)} (made by an operation inside a block, as recorded)", recorded))
            return recorded
        saved = (dict(self.core), list(self.steps))
        try:
            v = self.start(producer)
        except _Unexplained:
            v = math.nan
        if not math.isclose(v, recorded, rel_tol=1e-4, abs_tol=1e-4):  # changed in place later, or not spelled out
            self.core, self.steps = saved
            self.steps.append(Step("input", f"{_f(recorded)} (the output of {producer}, as recorded)", recorded))
            return recorded
        return v

    def _window(self, name: str, module: nn.Module, x: torch.Tensor, terms_of, bias=None) -> float:
        terms, window, reduce, combined, kind = terms_of(module, x[0], self.c, self.y, self.x)
        if kind == "pointwise":
            terms = sorted(terms, key=lambda t: -abs(t.product))
        kernel = window[1:]
        stride = (1, 1) if isinstance(module, ADAPTIVE_POOLS) else _stride(module)
        self.core = dict(kind=kind, source=name, source_type=type(module).__name__, input_layer=self.trace.producer_of(x) or "",
                         window=window, terms=tuple(terms), reduce=reduce, products_sum=combined, kernel=kernel, stride=stride)
        if bias is not None:
            b = float(bias[self.c].detach())
            self.steps.append(Step("bias", f"{_f(combined)} + {_f(b)}", combined + b))
            return combined + b
        return combined

    def _last_member_output(self, name: str, shape) -> str | None:
        for member in reversed(self.trace.children_outputs.get(name, [])):
            out = self.trace.outputs.get(member)
            if out is not None and out.shape == shape:
                return member
        return None


def _stride(module: nn.Module) -> tuple[int, int]:
    s = module.stride if module.stride is not None else module.kernel_size
    return (int(s), int(s)) if isinstance(s, int) else (int(s[0]), int(s[1]))


class _Unexplained(Exception):
    pass


def explain_neuron(trace: NetworkTrace, layer: str, channel: int, y: int, x: int) -> NeuronArithmetic:
    """The arithmetic behind one neuron of a traced forward pass (see `explain.receptive.trace_network`)."""
    module = trace.module(layer)
    out = trace.outputs[layer]
    if out.ndim != 4:
        raise LensError(f"Layer '{layer}' has no spatial map: pick a convolution, pooling or block layer.")
    c, h, w = out.shape[1:]
    if not 0 <= channel < c:
        raise LensError(f"Channel {channel} does not exist: layer '{layer}' has channels 0..{c - 1}.")
    if not (0 <= y < h and 0 <= x < w):
        raise LensError(f"Position (y={y}, x={x}) is outside layer '{layer}': its map is {h}×{w} (y 0..{h - 1}, x 0..{w - 1}).")
    value = float(out[0, channel, y, x])
    builder = _Builder(trace, channel, y, x)
    try:
        builder.start(layer)
        core, steps = builder.core, tuple(builder.steps)
    except _Unexplained:
        core, steps = {}, ()
    if not core and not steps:
        core = dict(kind="unexplained", source="", source_type=type(module).__name__, input_layer="", window=(0, 0, 0),
                    terms=(), reduce="sum", products_sum=value, kernel=(0, 0), stride=(1, 1))
    elif not core:
        core = dict(kind="elementwise", source="", source_type="", input_layer="", window=(0, 0, 0),
                    terms=(), reduce="sum", products_sum=steps[0].value, kernel=(0, 0), stride=(1, 1))
    box = receptive_field(trace, layer, y, x) if layer in trace.spans else None
    return NeuronArithmetic(layer, channel, y, x, value, steps=steps, receptive_field=box, **core)


def term_grids(arithmetic: NeuronArithmetic) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, weights, products), each (channels, kh, kw) in network order, of a window's terms."""
    c, kh, kw = arithmetic.window
    if not arithmetic.terms or len(arithmetic.terms) != c * kh * kw:
        raise LensError("This neuron's window is too large to list term by term.")
    ordered = sorted(arithmetic.terms, key=lambda t: (t.channel, t.ky, t.kx))
    grid = np.array([[t.input, t.weight, t.product] for t in ordered]).reshape(c, kh, kw, 3)
    return grid[..., 0], grid[..., 1], grid[..., 2]


def neuron_json(arithmetic: NeuronArithmetic, max_terms: int | None = None) -> dict:
    """The arithmetic as plain JSON types (the CLI's --json)."""
    terms = arithmetic.terms if max_terms is None else arithmetic.terms[:max_terms]
    return {
        "layer": arithmetic.layer,
        "channel": arithmetic.channel,
        "y": arithmetic.y,
        "x": arithmetic.x,
        "value": arithmetic.value,
        "receptive_field": list(arithmetic.receptive_field) if arithmetic.receptive_field else None,
        "kind": arithmetic.kind,
        "source": arithmetic.source,
        "source_type": arithmetic.source_type,
        "input_layer": arithmetic.input_layer,
        "window": list(arithmetic.window),
        "kernel": list(arithmetic.kernel),
        "stride": list(arithmetic.stride),
        "reduce": arithmetic.reduce,
        "terms": [
            {"channel": t.channel, "ky": t.ky, "kx": t.kx, "y": t.y, "x": t.x, "input": t.input, "weight": t.weight, "product": t.product}
            for t in terms
        ],
        "terms_total": len(arithmetic.terms),
        "products_sum": arithmetic.products_sum,
        "steps": [{"name": s.name, "detail": s.detail, "value": s.value} for s in arithmetic.steps],
        "sum": arithmetic.result,
    }
