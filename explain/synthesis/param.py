"""Parameterisations: what the optimiser changes, and how that becomes an image (1, 3, H, W) in [0, 1].

Raw pixels (the course recipe), or a Fourier spectrum scaled like natural photos (1/f) with decorrelated
colours (Olah et al. 2017, Lucid/Lucent): the same gradient steps then change large, natural structures first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from explain.errors import LensError

PARAMETERISATIONS = ("pixels", "fft")

# Square root of the ImageNet colour covariance (from Lucid): a unit step in this basis is a natural colour change.
_COLOR_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_MATRIX = _COLOR_SVD_SQRT / _COLOR_SVD_SQRT.norm(dim=0).max()


# --- parameterisations ---------------------------------------------------------------------------
@dataclass
class ImageParam:
    """Trainable tensors and the function that turns them into an image (1, 3, H, W) in [0, 1]."""

    params: list[torch.Tensor]
    render: Callable[[], torch.Tensor]
    clamp: Callable[[], None] = lambda: None  # keeps raw pixels in range after each step


def pixel_param(size: int, generator: torch.Generator, device: torch.device, noise: float = 0.1) -> ImageParam:
    """Raw pixels starting as grey noise (the course recipe); values are kept in [0, 1] by clamping."""
    init = 0.5 + noise * torch.randn(1, 3, size, size, generator=generator)
    pixels = init.clamp(0, 1).to(device).requires_grad_(True)

    def clamp() -> None:
        with torch.no_grad():
            pixels.clamp_(0, 1)

    return ImageParam([pixels], lambda: pixels, clamp)


def _rfft2d_freqs(h: int, w: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def fft_param(
    size: int,
    generator: torch.Generator,
    device: torch.device,
    decorrelate: bool = True,
    decay_power: float = 1.0,
    sd: float = 0.01,
) -> ImageParam:
    """An image described by its Fourier spectrum, scaled so low frequencies move first (1/f like photos).

    decorrelate: the 3 channels are coordinates in a decorrelated colour basis, not R, G, B.
    """
    freqs = _rfft2d_freqs(size, size)
    scale = (1.0 / torch.clamp(freqs, min=1.0 / size) ** decay_power).to(device)[None, None]
    spectrum = (sd * torch.randn(1, 3, *freqs.shape, 2, generator=generator)).to(device).requires_grad_(True)
    colors = _COLOR_MATRIX.to(device)

    def render() -> torch.Tensor:
        image = torch.fft.irfftn(torch.view_as_complex(spectrum) * scale, s=(size, size), norm="ortho") / 4.0
        if decorrelate:
            image = torch.einsum("nchw,dc->ndhw", image, colors)
        return torch.sigmoid(image)

    return ImageParam([spectrum], render)


def make_param(method: str, size: int, generator: torch.Generator, device: torch.device) -> ImageParam:
    """The parameterisation called `method` ("pixels" or "fft")."""
    if method == "pixels":
        return pixel_param(size, generator, device)
    if method == "fft":
        return fft_param(size, generator, device)
    raise LensError(f"Unknown method '{method}'. Choose one of: {', '.join(PARAMETERISATIONS)}.")


