"""Random transforms applied to the picture before every forward pass, so it must work from many small views.

Each transform is a function (images (N, 3, H, W), generator) -> images; `compose` chains them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def pad(width: int, mode: str = "reflect") -> Transform:
    """Pad every side, so the border is not a special place that the image can exploit."""

    def apply(x: torch.Tensor, _g: torch.Generator) -> torch.Tensor:
        return F.pad(x, [width] * 4, mode=mode) if width > 0 else x

    return apply


def jitter(d: int) -> Transform:
    """Shift each copy by up to d pixels in x and y (a random crop d pixels smaller)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if d <= 0:
            return x
        h, w = x.shape[-2:]
        offsets = torch.randint(0, d + 1, (x.shape[0], 2), generator=g).tolist()
        return torch.stack([x[i, :, oy : oy + h - d, ox : ox + w - d] for i, (oy, ox) in enumerate(offsets)])

    return apply


def _affine(x: torch.Tensor, scale: torch.Tensor, angle_rad: torch.Tensor) -> torch.Tensor:
    cos, sin = torch.cos(angle_rad) / scale, torch.sin(angle_rad) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1).to(x)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_scale(low: float, high: float) -> Transform:
    """Zoom each copy by a random factor in [low, high] (the size in pixels stays the same)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if low == high == 1.0:
            return x
        n = x.shape[0]
        return _affine(x, _uniform(n, low, high, g), torch.zeros(n))

    return apply


def random_rotate(degrees: float) -> Transform:
    """Rotate each copy by a random angle in [-degrees, degrees]."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if degrees <= 0:
            return x
        n = x.shape[0]
        return _affine(x, torch.ones(n), _uniform(n, -degrees, degrees, g) * math.pi / 180)

    return apply


def random_scale_rotate(low: float, high: float, degrees: float) -> Transform:
    """random_scale and random_rotate in one resampling (one interpolation blurs less than two)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if low == high == 1.0 and degrees <= 0:
            return x
        n = x.shape[0]
        return _affine(x, _uniform(n, low, high, g), _uniform(n, -degrees, degrees, g) * math.pi / 180)

    return apply


def compose(transforms: list[Transform]) -> Transform:
    """Apply the transforms in order."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for transform in transforms:
            x = transform(x, g)
        return x

    return apply


