"""A faster twin of a network for passes that need only logits and input gradients: BatchNorm folded into the convs.

The attack, saliency, guided backprop, SmoothGrad, integrated gradients and occlusion spend nearly all their time
in such passes (forward, or forward plus the gradient with respect to the input). In eval mode a BatchNorm is a fixed
per-channel scale and shift, so it can be folded into the convolution before it (w' = w·γ/σ, b' = β − μ·γ/σ): the
same function in one op instead of two, with no BatchNorm backward. TensorFlow-style "same" convolutions (timm's
Conv2dSame: EfficientNet-Lite's stride-2 layers) become plain convolutions too (see `SamePadConv`). The twin is a
*copy* (the app's network is never changed), its parameters need no gradient, and it is used only if its logits match
the original's on a test input; otherwise the attack runs on the original network.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from explain.receptive import same_padding

FOLD_TOLERANCE = 1e-3  # largest |logit difference| accepted on the check input (float32 rounding is ~1e-5)

_cache: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, nn.Module | None]] = weakref.WeakKeyDictionary()
_lock = threading.RLock()  # a twin may be built from another twin (explain.fusing)


def _fingerprint(model: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer of the model is replaced or changed in place (training, loading)."""
    tensors = [*model.parameters(), *model.buffers()]
    return (model.training, tuple((id(t), t._version) for t in tensors))


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (
        isinstance(conv, nn.Conv2d)
        and isinstance(bn, nn.BatchNorm2d)
        and not bn.training
        and bn.running_mean is not None
        and bn.running_var is not None
        and bn.num_features == conv.out_channels
    )


def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        scale = torch.rsqrt(bn.running_var.double() + bn.eps)
        if bn.weight is not None:
            scale = scale * bn.weight.double()
        shift = -bn.running_mean.double() * scale
        if bn.bias is not None:
            shift = shift + bn.bias.double()
        if conv.bias is not None:
            shift = shift + conv.bias.double() * scale
        weight = conv.weight.double() * scale.view(-1, 1, 1, 1)
        conv.weight = nn.Parameter(weight.to(conv.weight.dtype).contiguous(memory_format=_layout(conv.weight)))
        conv.bias = nn.Parameter(shift.to(conv.weight.dtype))


def _layout(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


def _without_norm(bn: nn.BatchNorm2d) -> nn.Module:
    """What is left of a BatchNorm once folded: nothing, or timm's BatchNormAct2d's dropout and activation."""
    rest = [m for m in (getattr(bn, "drop", None), getattr(bn, "act", None)) if isinstance(m, nn.Module)]
    return nn.Sequential(*rest) if rest else nn.Identity()


def fold_batchnorm(model: nn.Module) -> int:
    """Fold, in place, every eval-mode BatchNorm2d registered right after the Conv2d it normalises; how many were folded.

    "Right after" is registration order inside one parent (conv, bn) -- how torchvision and timm build their
    blocks. A network that registers them so but calls them otherwise would compute something else: the caller
    checks the logits (see `folded_twin`).
    """
    folded = 0
    for parent in list(model.modules()):
        names = list(parent._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = parent._modules[first], parent._modules[second]
            if _foldable(conv, bn):
                _fold_into(conv, bn)
                parent._modules[second] = _without_norm(bn)
                folded += 1
    return folded


class SamePadConv(nn.Module):
    """timm's Conv2dSame (TensorFlow "same" padding) as one plain convolution, with no padded copy of the input.

    Conv2dSame pads the input first, by an amount that depends on its size, odd amounts one more after than
    before, and convolves without padding. Padding a channels-last tensor is slow on the CPU: on
    EfficientNet-Lite0's stride-2 depthwise layers the pad took 5 times as long as the convolution. A
    symmetric amount is the convolution's own padding; an odd one is the convolution's padding of the larger
    half on both sides with the kernel grown by a zero row (column) in front, which lines the windows up as
    the uneven pad would, and covers the extra zero row before the input with that zero weight.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.stride, self.groups = conv.stride, conv.groups
        self._kernels: dict[tuple, torch.Tensor] = {}

    def padded(self, height: int, width: int) -> tuple[torch.Tensor, tuple[int, int]]:
        """(kernel, symmetric padding) that compute the same convolution on an input of this size."""
        kh, kw = self.weight.shape[-2:]
        ph, pw = same_padding(height, kh, self.stride[0]), same_padding(width, kw, self.stride[1])
        padding = ((ph + 1) // 2, (pw + 1) // 2)
        if self.weight.requires_grad and torch.is_grad_enabled():  # being trained: a kernel the gradient reaches
            return F.pad(self.weight, (pw % 2, 0, ph % 2, 0)), padding
        key = (ph % 2, pw % 2, self.weight.device)
        if key not in self._kernels:  # the zero row and column go in front: the larger half of the pad is after
            grown = F.pad(self.weight.detach(), (key[1], 0, key[0], 0))
            self._kernels[key] = grown.contiguous(memory_format=_layout(self.weight))
        return self._kernels[key], padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, padding = self.padded(*x.shape[-2:])
        return F.conv2d(x, kernel, self.bias, self.stride, padding, 1, self.groups)


def _is_same_conv(module: nn.Module) -> bool:
    return (
        type(module).__name__ == "Conv2dSame"
        and isinstance(module, nn.Conv2d)
        and tuple(module.dilation) == (1, 1)
        and tuple(module.padding) == (0, 0)
    )


def replace_same_convs(model: nn.Module) -> int:
    """Replace, in place, every timm Conv2dSame by the equal `SamePadConv`; how many were replaced."""
    done = 0
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if _is_same_conv(child):
                parent._modules[name] = SamePadConv(child)
                done += 1
    return done


def _check_input(model: nn.Module, size: int) -> torch.Tensor:
    param = next(model.parameters())
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 3, size, size, generator=gen).to(param.device)


def _twin(model: nn.Module, size: int) -> nn.Module:
    twin = copy.deepcopy(model)
    if not fold_batchnorm(twin) + replace_same_convs(twin):
        return model
    for p in twin.parameters():
        p.requires_grad_(False)  # the attack wants input gradients only
    x = _check_input(model, size)
    with torch.no_grad():
        same = torch.allclose(twin(x), model(x), rtol=0, atol=FOLD_TOLERANCE)
    return twin if same else model


def folded_twin(model: nn.Module, size: int = 224) -> nn.Module:
    """The network to run when only logits and input gradients are wanted: a BatchNorm-folded copy of `model` when that gives the same logits, else `model`.

    Cached per model (weakly) and rebuilt when any of its weights change; `model` itself is never modified.
    Only for eval-mode models: one in training mode is returned as it is.
    """
    if model.training:
        return model
    return cached_twin(_cache, model, lambda m: _twin(m, size))


def cached_twin(cache: weakref.WeakKeyDictionary, model: nn.Module, build: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """build(model), kept in `cache` per model (weakly) until any of the model's weights change."""
    key = _fingerprint(model)
    with _lock:
        hit = cache.get(model)
        if hit is not None and hit[0] == key:
            return hit[1] or model
        twin = build(model)
        cache[model] = (key, None if twin is model else twin)  # no strong reference back to the key
        return twin
