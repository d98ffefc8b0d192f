"""The attack's twin of the network: the folded twin (explain.folding) with each convolution and the ReLU after it
as one operation, whose backward pass can leak gradient through switched-off units.

On the CPU a ReLU6 costs as much memory traffic as the depthwise convolution before it: applying it as the
convolution's own post-op (oneDNN's fused convolution) made EfficientNet-Lite0's forward pass 20 % faster and a
forward plus input-gradient pass 7-10 % faster (3-12 views a batch), to the same logits bit for bit. The backward pass is written out
(the activation's gradient, then the convolution's gradient for its input only), which is where the attack's
gradient leak goes too: one module instead of a ReLU module, two hooks and a copy of its input.

Only for passes that want logits and input gradients: the ReLUs disappear as modules, so hooks on them (guided
backprop) would not run; those keep using `folded_twin`.
"""

from __future__ import annotations

import copy
import threading
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from explain.folding import FOLD_TOLERANCE, SamePadConv, _check_input, cached_twin, folded_twin

_leaks = threading.local()  # per thread: {ConvAct: leak} while a `leaking` block runs


def _fused_op():
    try:
        return torch.ops.mkldnn._convolution_pointwise.default
    except (AttributeError, RuntimeError):  # a PyTorch without oneDNN, or one that renamed the op
        return None


_FUSED = _fused_op()


class _ConvActGrad(torch.autograd.Function):
    """y = act(conv(x)); backward: the activation's gradient, `leak` of it also where the unit is off, then the conv's for x."""

    @staticmethod
    def forward(ctx, x, weight, bias, padding, stride, groups, high, leak, fused):
        y = _forward(x, weight, bias, padding, stride, groups, high, fused)
        ctx.save_for_backward(x, weight, y)
        ctx.conf = (padding, stride, groups, high, leak)
        return y

    @staticmethod
    def backward(ctx, grad):
        x, weight, y = ctx.saved_tensors
        padding, stride, groups, high, leak = ctx.conf
        if high is None:
            through = torch.ops.aten.threshold_backward.default(grad, y, 0)
        else:
            through = torch.ops.aten.hardtanh_backward.default(grad, y, 0, high)
        if leak > 0:
            # on: grad; off: leak × grad (as explain.adversarial.leaky's hooks do for a ReLU module)
            through = through.lerp_(grad, leak)
        (gx, _, _) = torch.ops.aten.convolution_backward.default(
            through, x, weight, None, list(stride), list(padding), [1, 1], False, [0, 0], groups, [True, False, False]
        )
        return gx, None, None, None, None, None, None, None, None


def _forward(x, weight, bias, padding, stride, groups, high, fused: bool) -> torch.Tensor:
    if fused:
        attr, scalars = ("relu", []) if high is None else ("hardtanh", [0.0, high])
        return _FUSED(x, weight, bias, list(padding), list(stride), [1, 1], groups, attr, scalars, None)
    y = F.conv2d(x, weight, bias, stride, padding, 1, groups)
    return y.relu_() if high is None else y.clamp_(0, high)


class ConvAct(nn.Module):
    """A convolution (nn.Conv2d with no dilation, or SamePadConv) and the ReLU or ReLU6 right after it, as one op."""

    def __init__(self, conv: nn.Module, high: float | None):
        super().__init__()
        self.conv, self.high = conv, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if isinstance(conv, SamePadConv):
            weight, padding = conv.padded(*x.shape[-2:])
        else:
            weight, padding = conv.weight, tuple(conv.padding)
        if weight.requires_grad and torch.is_grad_enabled():  # a model being trained: PyTorch's own ops, no leak
            y = F.conv2d(x, weight, conv.bias, conv.stride, padding, 1, conv.groups)
            return F.relu(y) if self.high is None else F.hardtanh(y, 0.0, self.high)
        fused = _FUSED is not None and x.device.type == "cpu" and x.dtype == torch.float32
        if torch.is_grad_enabled() and x.requires_grad:
            leak = getattr(_leaks, "by_module", {}).get(self, 0.0)
            return _ConvActGrad.apply(x, weight, conv.bias, padding, tuple(conv.stride), conv.groups, self.high, leak, fused)
        return _forward(x, weight, conv.bias, padding, tuple(conv.stride), conv.groups, self.high, fused)


_NOT_AN_ACTIVATION = object()


def _high(module: nn.Module):
    """The activation's upper clip: 6.0 for ReLU6, None for ReLU; for a Sequential of Identity modules and one of
    them (a folded timm BatchNormAct2d), that one's; otherwise _NOT_AN_ACTIVATION."""
    if type(module) is nn.ReLU6:
        return 6.0
    if type(module) is nn.ReLU:
        return None
    if type(module) is nn.Sequential:
        kids = [k for k in module if not isinstance(k, nn.Identity)]
        if len(kids) == 1 and type(kids[0]) in (nn.ReLU, nn.ReLU6):
            return _high(kids[0])
    return _NOT_AN_ACTIVATION


def _fusable_conv(module: nn.Module) -> bool:
    return isinstance(module, SamePadConv) or (
        type(module) is nn.Conv2d
        and tuple(module.dilation) == (1, 1)
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def fuse_activations(model: nn.Module) -> int:
    """Fuse, in place, each convolution with the ReLU(6) that follows it; how many were fused.

    "Follows" means registered next in the same parent: in an nn.Sequential (which calls its children in
    order) after nothing but Identity modules; in any other module only what is left of a folded timm
    BatchNormAct2d (a Sequential of Identity modules and the activation) right after it -- a bare ReLU module
    there may be shared and called anywhere (torchvision's ResNet blocks). The caller checks the logits.
    """
    fused = 0
    for parent in list(model.modules()):
        names = list(parent._modules)
        for i, name in enumerate(names):
            if not _fusable_conv(parent._modules[name]):
                continue
            j = i + 1
            if isinstance(parent, nn.Sequential):
                while j < len(names) and isinstance(parent._modules[names[j]], nn.Identity):
                    j += 1
            if j == len(names):
                continue
            after = parent._modules[names[j]]
            if not isinstance(parent, nn.Sequential) and type(after) is not nn.Sequential:
                continue
            high = _high(after)
            if high is _NOT_AN_ACTIVATION:
                continue
            parent._modules[name] = ConvAct(parent._modules[name], high)
            parent._modules[names[j]] = nn.Identity()
            fused += 1
    return fused


_cache: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module | None]] = weakref.WeakKeyDictionary()


def fused_twin(model: nn.Module, size: int = 224) -> nn.Module:
    """The folded twin with its convolutions and ReLUs fused (same logits, faster passes), or the folded twin as it is
    when nothing fuses or the logits differ. Cached per model (weakly), rebuilt when its weights change."""
    base = folded_twin(model, size)
    if base is model:
        return model
    return cached_twin(_cache, model, lambda _: _fused(base, size))


def _fused(base: nn.Module, size: int) -> nn.Module:
    twin = copy.deepcopy(base)
    if not fuse_activations(twin):
        return base
    x = _check_input(base, size)
    with torch.no_grad():
        same = torch.allclose(twin(x), base(x), rtol=0, atol=FOLD_TOLERANCE)
    return twin if same else base


def leaking(model: nn.Module, leak: float):
    """Set (on this thread) the backward leak of every ConvAct in model; returns a function that undoes it."""
    table = getattr(_leaks, "by_module", None)
    if table is None:
        table = _leaks.by_module = {}
    modules = [m for m in model.modules() if isinstance(m, ConvAct)]
    before = {m: table[m] for m in modules if m in table}
    for m in modules:
        table[m] = leak

    def clear() -> None:  # back to what it was (a block inside another one for the same model)
        for m in modules:
            table.pop(m, None)
        table.update(before)

    return clear
