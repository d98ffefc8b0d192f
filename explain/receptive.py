"""Receptive fields: which input pixels can reach a neuron (from kernels, strides, padding, dilation), and how much each does.

`trace_network` runs one forward pass and keeps every module's input and output (its last call) and, for every
tensor, the box of input pixels each of its positions can see. The box is carried through the network as two
integer arrays per axis (first and last input pixel of every output row and column): a convolution or pooling
window takes the union of the boxes of the positions it reads, an element-wise layer keeps its input's boxes, a
block that adds or concatenates tensors (a residual connection) takes the union of the boxes inside it, and a
tensor of a different size made by something CNN Lens cannot read (global pooling inside a squeeze-excite block,
a flatten) sees the whole image. Padding reaches no pixel, so boxes end at the image border.

`effective_receptive_field` is the other view: the gradient of the neuron with respect to the input pixels, whose
mass is spread unevenly over the box (mostly near its centre).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from explain.errors import LensError
from explain.hooks import attached

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in input pixels; x1, y1 exclusive, like a slice

POOLS = (nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE_POOLS = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _same_dynamic(module: nn.Module) -> bool:
    """timm's TensorFlow-style layers (Conv2dSame, MaxPool2dSame, …) pad inside forward, by the input's size."""
    return type(module).__name__.endswith("Same") or type(module).__name__.endswith("SameExport")


def window_geometry(module: nn.Module) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    """(kernel, stride, dilation), each (h, w), of a convolution or pooling layer."""
    if isinstance(module, nn.Conv2d):
        return _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
    if isinstance(module, POOLS):
        kernel = _pair(module.kernel_size)
        stride = _pair(module.stride if module.stride is not None else module.kernel_size)
        return kernel, stride, _pair(getattr(module, "dilation", 1))
    raise LensError(f"{type(module).__name__} is not a convolution or pooling layer.")


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    """Zero rows (or columns) TensorFlow's "same" padding adds to an input of this size, in all; timm's *Same
    layers put the odd one after the input."""
    return max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def padding_of(module: nn.Module, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero rows/columns a convolution or pooling layer adds to an input of size (h, w)."""
    kernel, stride, dilation = window_geometry(module)
    out = []
    for n, k, s, d, p in zip(size, kernel, stride, dilation, _padding_attr(module)):
        if p == "same_dynamic":
            total = same_padding(n, k, s, d)
        elif p == "same":
            total = d * (k - 1)
        else:
            out += [int(p), int(p)]
            continue
        out += [total // 2, total - total // 2]
    return out[0], out[1], out[2], out[3]


def _padding_attr(module: nn.Module) -> tuple:
    if _same_dynamic(module):
        return ("same_dynamic", "same_dynamic")
    padding = module.padding
    if isinstance(padding, str):
        return (padding, padding) if padding == "same" else (0, 0)
    return _pair(padding)


# ---------------------------------------------------------------- spans: the box of every position of a tensor


@dataclass(frozen=True)
class Span:
    """For every row y of a map: input rows y_lo[y]..y_hi[y] (inclusive); the same for columns."""

    y_lo: np.ndarray
    y_hi: np.ndarray
    x_lo: np.ndarray
    x_hi: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return len(self.y_lo), len(self.x_lo)

    def box(self, y: int, x: int) -> Box:
        return int(self.x_lo[x]), int(self.y_lo[y]), int(self.x_hi[x]) + 1, int(self.y_hi[y]) + 1


def _identity_span(h: int, w: int) -> Span:
    ys, xs = np.arange(h), np.arange(w)
    return Span(ys, ys.copy(), xs, xs.copy())


def _whole_span(size: tuple[int, int], image: tuple[int, int]) -> Span:
    h, w = size
    return Span(np.zeros(h, int), np.full(h, image[0] - 1), np.zeros(w, int), np.full(w, image[1] - 1))


def _union(spans: list[Span]) -> Span:
    return Span(
        np.minimum.reduce([s.y_lo for s in spans]), np.maximum.reduce([s.y_hi for s in spans]),
        np.minimum.reduce([s.x_lo for s in spans]), np.maximum.reduce([s.x_hi for s in spans]),
    )


def _window_axis(lo, hi, n_out: int, k: int, s: int, d: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Each output index reads input indices o*s - pad + t*d (t < k); those inside the input carry their boxes."""
    n_in = len(lo)
    out_lo, out_hi = np.empty(n_out, int), np.empty(n_out, int)
    for o in range(n_out):
        taps = [o * s - pad + t * d for t in range(k)]
        taps = [i for i in taps if 0 <= i < n_in]
        if not taps:  # a window that reads only padding (ceil_mode): nothing of the image
            taps = [min(max(o * s - pad, 0), n_in - 1)]
        out_lo[o], out_hi[o] = min(lo[i] for i in taps), max(hi[i] for i in taps)
    return out_lo, out_hi


def _adaptive_axis(lo, hi, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    n_in = len(lo)
    starts = [(o * n_in) // n_out for o in range(n_out)]
    ends = [-((-(o + 1) * n_in) // n_out) for o in range(n_out)]
    return (np.array([lo[a:b].min() for a, b in zip(starts, ends)]), np.array([hi[a:b].max() for a, b in zip(starts, ends)]))


def _module_span(module: nn.Module, span: Span, out_size: tuple[int, int]) -> Span | None:
    """The span of a convolution or pooling layer's output; None for any other layer."""
    if isinstance(module, nn.Conv2d) or isinstance(module, POOLS):
        (kh, kw), (sh, sw), (dh, dw) = window_geometry(module)
        top, _, left, _ = padding_of(module, span.size)
        y = _window_axis(span.y_lo, span.y_hi, out_size[0], kh, sh, dh, top)
        x = _window_axis(span.x_lo, span.x_hi, out_size[1], kw, sw, dw, left)
        return Span(y[0], y[1], x[0], x[1])
    if isinstance(module, ADAPTIVE_POOLS):
        y = _adaptive_axis(span.y_lo, span.y_hi, out_size[0])
        x = _adaptive_axis(span.x_lo, span.x_hi, out_size[1])
        return Span(y[0], y[1], x[0], x[1])
    return None


# ---------------------------------------------------------------- one forward pass, everything kept


@dataclass
class NetworkTrace:
    """One forward pass of one image: every module's input and output (last call) and every map's span."""

    modules: dict[str, nn.Module]
    inputs: dict[str, torch.Tensor]  # module name -> its first input (batch of one), as the module received it
    outputs: dict[str, torch.Tensor]  # module name -> its output
    spans: dict[str, Span]  # module name -> box of input pixels of each output position (4-D outputs only)
    producer: dict[int, str]  # id(tensor) -> the first (innermost) module that returned it
    children_outputs: dict[str, list[str]]  # container -> modules that finished during its call, in order
    image_size: tuple[int, int]
    logits: torch.Tensor
    _keep: list = field(default_factory=list, repr=False)  # the tensors whose id() the maps above use

    def module(self, layer: str) -> nn.Module:
        if layer not in self.modules or layer not in self.outputs:
            raise LensError(f"Unknown layer '{layer}'. Pick a layer name from the model's layer list.")
        return self.modules[layer]

    def producer_of(self, tensor: torch.Tensor) -> str | None:
        return self.producer.get(id(tensor))


def trace_network(model: nn.Module, x: torch.Tensor) -> NetworkTrace:
    """Run x (one normalised image, (1, 3, H, W)) through the model, keeping what explaining a neuron needs."""
    if x.ndim != 4 or x.shape[0] != 1:
        raise LensError("Tracing a network takes exactly one image.")
    modules = {name: m for name, m in model.named_modules() if name}
    image = (int(x.shape[2]), int(x.shape[3]))
    spans_by_id: dict[int, Span] = {id(x): _identity_span(*image)}
    keep: list = [x]
    trace = NetworkTrace(modules, {}, {}, {}, {}, {}, image, torch.empty(0), keep)
    # open module calls (name, input span, spans made inside, finished modules), the model's own call first
    stack: list[dict] = [{"name": "", "span": spans_by_id[id(x)], "made": [], "done": []}]

    def span_of(t: torch.Tensor) -> Span:
        if id(t) in spans_by_id:
            return spans_by_id[id(t)]
        size = (int(t.shape[2]), int(t.shape[3])) if t.ndim == 4 else (1, 1)
        # made by an operation that is no module (an addition, a concatenation): the union of what the
        # innermost open block made at this size; a smaller map made from a larger one (a mean) sees everything
        for frame in reversed(stack):
            found = _same_size(frame, size)
            if found:
                return _union(found)
        return _whole_span(size, image)

    def pre(name):
        def hook(_module, inputs):
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            span = span_of(first) if first is not None and first.ndim == 4 else None
            stack.append({"name": name, "span": span, "made": [], "done": []})

        return hook

    def post(name):
        def hook(module, inputs, out):
            frame = stack.pop()
            first = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            if first is not None:
                trace.inputs[name] = first
                keep.append(first)
            for outer in stack:
                outer["done"].append(name)
            trace.children_outputs[name] = frame["done"]
            if not isinstance(out, torch.Tensor):
                return
            trace.outputs[name] = out
            keep.append(out)
            if out is not first:  # a layer that hands on its input (Identity, dropout) made nothing
                trace.producer.setdefault(id(out), name)
            if out.ndim != 4:
                return
            size = (int(out.shape[2]), int(out.shape[3]))
            if id(out) in spans_by_id:
                span = spans_by_id[id(out)]
            elif frame["span"] is not None and (made := _module_span(module, frame["span"], size)) is not None:
                span = made
            elif frame["span"] is not None and frame["span"].size == size and not frame["made"]:
                span = frame["span"]  # an element-wise layer (batch norm, activation)
            else:  # a block that combined what it made (a residual sum, a concatenation, a squeeze-excite product)
                found = _same_size(frame, size)
                span = _union(found) if found else _whole_span(size, image)
            spans_by_id[id(out)] = span
            trace.spans[name] = span
            for outer in stack:
                outer["made"].append(span)

        return hook

    hooks_pre = [(m, pre(n)) for n, m in modules.items()]
    hooks_post = [(m, post(n)) for n, m in modules.items()]
    with attached(forward=hooks_post, pre=hooks_pre), torch.no_grad():
        trace.logits = model(x).detach()
    return trace


def _same_size(frame: dict, size: tuple[int, int]) -> list[Span]:
    """The spans a block call made (and its input's) that can combine into a map of this size.

    A 1×1 map (a squeeze-excite gate) broadcasts over every position: its box joins each position's."""
    found = []
    for span in frame["made"] + [frame["span"]]:
        if span is None:
            continue
        if span.size == size:
            found.append(span)
        elif span.size == (1, 1):
            h, w = size
            found.append(Span(np.full(h, span.y_lo[0]), np.full(h, span.y_hi[0]), np.full(w, span.x_lo[0]), np.full(w, span.x_hi[0])))
    return found


def receptive_field(trace: NetworkTrace, layer: str, y: int, x: int) -> Box:
    """The box (x0, y0, x1, y1) of input pixels that can reach position (y, x) of a layer's output."""
    trace.module(layer)
    if layer not in trace.spans:
        raise LensError(f"Layer '{layer}' has no spatial map, so its neurons have no receptive field box.")
    span = trace.spans[layer]
    h, w = span.size
    if not (0 <= y < h and 0 <= x < w):
        raise LensError(f"Position (y={y}, x={x}) is outside layer '{layer}': its map is {h}×{w} (y 0..{h - 1}, x 0..{w - 1}).")
    return span.box(y, x)


# ---------------------------------------------------------------- effective receptive field


class _Reached(Exception):
    def __init__(self, value: torch.Tensor):
        super().__init__("reached")
        self.value = value


@dataclass(frozen=True)
class EffectiveField:
    """|d neuron / d pixel| summed over the colour channels, and where its mass lies."""

    weights: np.ndarray  # (H, W) float32, sums to 1 (all zeros when the neuron's gradient is zero)
    value: float  # the neuron's value in this forward pass
    box90: Box | None  # the smallest square around the mass's centre that holds 90% of it; None when no mass
    centre: tuple[float, float]  # (x, y) of the mass's centre of gravity, in input pixels

    @property
    def empty(self) -> bool:
        return not self.weights.any()


def effective_receptive_field(model: nn.Module, x: torch.Tensor, layer: str, channel: int, y: int, xpos: int) -> EffectiveField:
    """The input gradient of one neuron (x: one normalised image); the forward stops at the layer."""
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        raise LensError(f"Unknown layer '{layer}'. Pick a layer name from the model's layer list.")

    def grab(_module, _inputs, out):
        raise _Reached(out)

    pixels = x.detach().clone().requires_grad_(True)
    try:
        with attached(forward=[(modules[layer], grab)]), torch.enable_grad():
            model(pixels)
    except _Reached as reached:
        out = reached.value
    else:
        raise LensError(f"The network never ran layer '{layer}'.")
    if out.ndim != 4:
        raise LensError(f"Layer '{layer}' has no spatial map.")
    c, h, w = out.shape[1:]
    if not (0 <= channel < c and 0 <= y < h and 0 <= xpos < w):
        raise LensError(f"Neuron (channel {channel}, y {y}, x {xpos}) is outside layer '{layer}' ({c}×{h}×{w}).")
    neuron = out[0, channel, y, xpos]
    (grad,) = torch.autograd.grad(neuron, pixels)
    mass = grad[0].abs().sum(0).double().cpu().numpy()
    total = float(mass.sum())
    weights = (mass / total if total > 0 else mass).astype(np.float32)
    return EffectiveField(weights, float(neuron.detach()), *_mass_box(weights))


def _mass_box(weights: np.ndarray, share: float = 0.9) -> tuple[Box | None, tuple[float, float]]:
    h, w = weights.shape
    if not weights.any():
        return None, (w / 2, h / 2)
    ys, xs = np.mgrid[0:h, 0:w]
    cy, cx = float((weights * ys).sum()), float((weights * xs).sum())
    table = np.pad(weights.astype(np.float64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    iy, ix = int(round(cy)), int(round(cx))
    for r in range(max(h, w)):
        y0, y1, x0, x1 = max(iy - r, 0), min(iy + r + 1, h), max(ix - r, 0), min(ix + r + 1, w)
        inside = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
        if inside >= share - 1e-9:
            return (x0, y0, x1, y1), (cx, cy)
    return (0, 0, w, h), (cx, cy)


def padded_window(module: nn.Module, x: torch.Tensor, y: int, xpos: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """What a convolution or pooling window at output (y, xpos) reads from its input x (C, H, W).

    Returns the window (C, kh, kw) as the layer sees it (padding included) and the input row and column of each
    tap (-1 for padding)."""
    (kh, kw), (sh, sw), (dh, dw) = window_geometry(module)
    top, bottom, left, right = padding_of(module, tuple(x.shape[1:]))
    mode = getattr(module, "padding_mode", "zeros")
    value = float("-inf") if isinstance(module, nn.MaxPool2d) else 0.0
    if mode == "zeros" or not isinstance(module, nn.Conv2d):
        padded = F.pad(x, (left, right, top, bottom), value=value)
    else:
        padded = F.pad(x[None], (left, right, top, bottom), mode=mode)[0]
    rows = np.array([y * sh + t * dh for t in range(kh)])
    cols = np.array([xpos * sw + t * dw for t in range(kw)])
    window = padded[:, rows][:, :, cols]
    in_rows = np.where((rows - top >= 0) & (rows - top < x.shape[1]), rows - top, -1)
    in_cols = np.where((cols - left >= 0) & (cols - left < x.shape[2]), cols - left, -1)
    return window, in_rows, in_cols


# ---------------------------------------------------------------- pictures

BOX_COLOUR = (255, 64, 32)  # the receptive field
MASS_COLOUR = (255, 255, 255)  # the square holding 90% of the gradient's mass


def draw_box(image: np.ndarray, box: Box, colour: tuple[int, int, int] = BOX_COLOUR, dim: float = 0.45) -> np.ndarray:
    """The photo (RGB uint8) with the box outlined and everything outside it dimmed (dim: share of brightness kept)."""
    import cv2

    x0, y0, x1, y1 = box
    out = (image.astype(np.float32) * dim).astype(np.uint8)
    out[y0:y1, x0:x1] = image[y0:y1, x0:x1]
    thickness = max(1, round(min(image.shape[:2]) / 150))
    cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, thickness)
    return out


def effective_field_image(image: np.ndarray, field: EffectiveField, box: Box | None = None, cmap: str = "inferno") -> np.ndarray:
    """The gradient's mass (each pixel's share, brightest = largest) laid over the photo, with the boxes drawn."""
    import cv2

    from explain.featuremaps import colorize

    weights = field.weights
    scaled = np.sqrt(weights / weights.max()) if weights.any() else weights  # a square root shows the faint rim too
    heat = colorize(scaled.astype(np.float32), cmap)
    out = cv2.addWeighted((image * 0.35).astype(np.uint8), 1.0, heat, 0.85, 0.0)
    thickness = max(1, round(min(image.shape[:2]) / 150))
    if box is not None:
        cv2.rectangle(out, box[:2], (box[2] - 1, box[3] - 1), BOX_COLOUR, thickness)
    if field.box90 is not None:
        b = field.box90
        cv2.rectangle(out, b[:2], (b[2] - 1, b[3] - 1), MASS_COLOUR, thickness)
    return out
