"""Does the map point at what the network uses? Remove (or reveal) pixels in the map's order and follow the class.

Deletion: the most relevant pixels go first (replaced by a blurred copy or the mean colour); a faithful map
makes the class probability fall fast, so the area under the curve is small. Insertion: start from the
blurred photo and reveal the most relevant pixels first; the area should be large (Petsiuk et al. 2018).
ROAD (Rong et al. 2022): removed pixels are filled by noisy linear imputation from their neighbours, so the
hole itself carries no shape the network could read ("remove and debias"); the score is the mean class
probability with 10 %, 20 %, …, 90 % of the most relevant pixels removed (lower = more faithful).
Every curve is one batch of perturbed copies through the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from explain.errors import LensError
from explain.models import Backbone
from explain.trust.impute import solve_exact, solve_fast

FILLS = ("blur", "mean")
ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True)
class Curve:
    """The class probability after perturbing each share of the pixels (fractions from 0 to 1)."""

    fractions: tuple[float, ...]
    probs: tuple[float, ...]

    @property
    def auc(self) -> float:
        """Area under the curve over the fractions (trapezoids); the mean probability for an even grid from 0 to 1."""
        f, p = np.asarray(self.fractions), np.asarray(self.probs)
        return float(((p[1:] + p[:-1]) * np.diff(f)).sum() / 2) if len(f) > 1 else float(p.mean())

    def fraction_at(self, level: float) -> float | None:
        """The share of pixels at which the curve first falls to `level` (linear between points); None if it never does."""
        for k in range(1, len(self.probs)):
            p0, p1 = self.probs[k - 1], self.probs[k]
            if p1 <= level < p0 or (p1 <= level and k == 1 and p0 <= level):
                if p0 == p1:
                    return float(self.fractions[k - 1])
                t = (p0 - level) / (p0 - p1)
                return float(self.fractions[k - 1] + t * (self.fractions[k] - self.fractions[k - 1]))
        return None

    def to_json(self) -> dict:
        return {"fractions": [round(f, 4) for f in self.fractions], "probs": [round(p, 6) for p in self.probs], "auc": round(self.auc, 6)}


def pixel_order(cam_map: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat pixel indices, most relevant first. Equal values follow the random baseline's own (coarse) order, so a
    flat map, or the flat zero part of a map, is read exactly like the random map rather than as scattered pixels."""
    m = np.asarray(cam_map, dtype=np.float64)
    coarse = random_map(m.shape, seed).ravel()
    fine = np.random.default_rng(seed).random(m.size)
    return np.lexsort((-fine, -coarse, -m.ravel()))


def random_map(shape: tuple[int, int], seed: int = 0, cells: int = 7) -> np.ndarray:
    """The baseline: uniform random values on a cells x cells grid, upsampled (bilinear) to shape.

    As coarse as a last-layer map (7 x 7 at 224 px): removing scattered single pixels would be a different,
    high-frequency perturbation that the network reacts to in its own way, so it would not be a fair baseline.
    """
    grid = np.random.default_rng(10_000 + seed).random((cells, cells)).astype(np.float32)
    return cv2.resize(grid, (int(shape[1]), int(shape[0])), interpolation=cv2.INTER_LINEAR)


def mean_curve(curves: Sequence[Curve]) -> Curve:
    """The pointwise mean of curves on the same fractions (the random baseline over several random maps)."""
    return Curve(curves[0].fractions, tuple(float(v) for v in np.mean([c.probs for c in curves], axis=0)))


def filled(x01: torch.Tensor, fill: str) -> torch.Tensor:
    """What removed pixels become: a strongly blurred copy of the photo, or its mean colour. x01: (1, 3, H, W)."""
    if fill not in FILLS:
        raise LensError(f"Unknown fill '{fill}'. Choose one of: {', '.join(FILLS)}.")
    if fill == "mean":
        return x01.mean((2, 3), keepdim=True).expand_as(x01).clone()
    image = x01[0].permute(1, 2, 0).cpu().numpy().astype(np.float32)
    sigma = max(1.0, min(image.shape[:2]) / 32)  # 7 px at 224: the shapes go, the colours stay
    blurred = cv2.GaussianBlur(image, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return torch.from_numpy(blurred).permute(2, 0, 1)[None].to(x01.device, x01.dtype)


def _check_map(x01: torch.Tensor, cam_map: np.ndarray) -> None:
    if tuple(np.shape(cam_map)) != tuple(x01.shape[2:]):
        raise LensError(f"The map ({np.shape(cam_map)}) must have the image's size {tuple(x01.shape[2:])}.")


def class_probs_of(backbone: Backbone, images: torch.Tensor, target: int, batch: int) -> list[float]:
    """The target's softmax probability for each image of a stack, `batch` images per pass."""
    out: list[float] = []
    with torch.no_grad():
        for s in range(0, images.shape[0], batch):
            out += backbone.logits(images[s : s + batch]).float().softmax(1)[:, target].cpu().tolist()
    return out


def perturbation_curves(
    backbone: Backbone, x01: torch.Tensor, target: int, maps: Sequence[np.ndarray], modes: Sequence[str],
    steps: int = 16, fill: str = "blur", seed: int = 0, batch: int | None = None,
) -> list[Curve]:
    """One curve per (map, mode), mode "deletion" or "insertion", at fractions 0, 1/steps, …, 1; all copies batched."""
    x01 = x01[:1].detach()
    base = filled(x01, fill)
    h, w = x01.shape[2:]
    fractions = [k / steps for k in range(steps + 1)]
    stack = []
    for cam_map, mode in zip(maps, modes):
        _check_map(x01, cam_map)
        if mode not in ("deletion", "insertion"):
            raise LensError(f"Unknown curve '{mode}': deletion or insertion.")
        order = torch.from_numpy(pixel_order(cam_map, seed)).to(x01.device)
        rank = torch.empty(h * w, dtype=torch.long, device=x01.device)
        rank[order] = torch.arange(h * w, device=x01.device)
        rank = rank.view(1, 1, h, w)
        for f in fractions:
            top = (rank < round(f * h * w)).to(x01.dtype)  # the share f of most relevant pixels
            stack.append(x01 * (1 - top) + base * top if mode == "deletion" else base * (1 - top) + x01 * top)
    probs = class_probs_of(backbone, torch.cat(stack), target, batch or backbone.micro_batch)
    n = len(fractions)
    return [Curve(tuple(fractions), tuple(probs[k * n : (k + 1) * n])) for k in range(len(maps))]


def linear_impute(
    image: np.ndarray, removed: np.ndarray, noise: float, rng: np.random.Generator,
    start: np.ndarray | None = None, exact: bool = False,
) -> np.ndarray:
    """ROAD's noisy linear imputation: each removed pixel becomes the weighted mean of its eight neighbours
    (one linear system for all of them, see explain.trust.impute), plus Gaussian noise.

    image: (3, H, W); removed: (H, W) bool. start: a first guess for the solver (C, H, W), e.g. the imputation of
    a smaller removed set. exact: factorise the system instead of the iterative solve (which is within 1e-4 of it
    and about 6 times quicker on a 224 px photo: bench/trust.py --road-speed).
    """
    c, h, w = image.shape
    if not removed.any():
        return image.copy()
    solved = None if exact else solve_fast(image, removed, start)
    if solved is None:
        solved = solve_exact(image, removed)
    out = image.reshape(c, -1).copy()
    out[:, removed.ravel()] = solved + noise * rng.standard_normal(solved.shape)
    return out.reshape(c, h, w)


def road_curve(
    backbone: Backbone, x01: torch.Tensor, target: int, cam_map: np.ndarray,
    fractions: Sequence[float] = ROAD_FRACTIONS, noise: float = 0.01, seed: int = 0, batch: int | None = None,
    exact: bool = False,
) -> Curve:
    """ROAD, most relevant first: the class probability with each share of the top pixels imputed away.

    exact: solve each imputation by factorisation (the reference; slow) instead of the iterative solver.
    """
    x01 = x01[:1].detach()
    _check_map(x01, cam_map)
    h, w = x01.shape[2:]
    order = pixel_order(cam_map, seed)
    image = x01[0].cpu().double().numpy()
    rng = np.random.default_rng(seed)
    copies: dict[int, torch.Tensor] = {}
    start = None
    # in growing order: each removed set holds the previous one, whose imputation is then a close first guess
    for k in sorted(range(len(fractions)), key=lambda k: fractions[k]):
        removed = np.zeros(h * w, dtype=bool)
        removed[order[: round(fractions[k] * h * w)]] = True
        start = linear_impute(image, removed.reshape(h, w), noise, rng, start, exact)
        copies[k] = torch.from_numpy(start).float()
    stack = torch.stack([copies[k] for k in range(len(fractions))]).clamp(0, 1).to(x01.device)
    probs = class_probs_of(backbone, stack, target, batch or backbone.micro_batch)
    return Curve(tuple(float(f) for f in fractions), tuple(probs))
