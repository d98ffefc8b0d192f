"""Penalties that keep a picture (or a perturbation) natural: total variation, L2 from grey, distance from a blur.

Each takes images (N, C, H, W) and returns one value per image, so a batch can weight or sum them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (0 for a flat image), per image."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean(dim=(-3, -2, -1))
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean(dim=(-3, -2, -1))
    return dx + dy


def l2_norm(image: torch.Tensor) -> torch.Tensor:
    """Mean squared distance of the pixels from mid-grey."""
    return ((image - 0.5) ** 2).mean(dim=(-3, -2, -1))


def gaussian_blur(image: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding."""
    radius = max(1, int(round(2 * sigma)))
    xs = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-(xs**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = image.shape[1]
    x = F.pad(image, [radius, radius, 0, 0], mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    x = F.pad(x, [0, 0, radius, radius], mode="reflect")
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def blur_penalty(image: torch.Tensor) -> torch.Tensor:
    """How far the image is from a blurred copy of itself (pulls towards smooth images)."""
    return ((image - gaussian_blur(image).detach()) ** 2).mean(dim=(-3, -2, -1))

