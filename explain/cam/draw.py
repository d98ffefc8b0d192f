"""Drawing and measuring a class map: heat maps, overlays, the share of a map inside a box."""

from __future__ import annotations

import cv2
import numpy as np

from explain.errors import LensError
from explain.featuremaps import COLORMAPS, colorize


def heatmap(cam_map: np.ndarray, size: tuple[int, int] | None = None, cmap: str = "jet") -> np.ndarray:
    """A [0, 1] map as a coloured RGB uint8 image, resized (bilinear) to size=(width, height)."""
    m = np.asarray(cam_map, dtype=np.float32)
    if size is not None and (m.shape[1], m.shape[0]) != tuple(size):
        m = cv2.resize(m, (int(size[0]), int(size[1])), interpolation=cv2.INTER_LINEAR)
    return colorize(np.clip(m, 0, 1), cmap)


def overlay_cam(image: np.ndarray, cam_map: np.ndarray, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """The map coloured with an OpenCV colour map and blended over an RGB uint8 image (alpha = map's share)."""
    if cmap not in COLORMAPS:
        raise LensError(f"Unknown colour map '{cmap}'. Choose one of: {', '.join(COLORMAPS)}.")
    if not 0.0 <= alpha <= 1.0:
        raise LensError("alpha must be between 0 and 1.")
    h, w = image.shape[:2]
    heat = heatmap(cam_map, (w, h), cmap).astype(np.float32)
    return np.clip(image.astype(np.float32) * (1 - alpha) + heat * alpha + 0.5, 0, 255).astype(np.uint8)


def mass_inside(cam_map: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Share of the map's total value inside a box (x0, y0, x1, y1) given as fractions of width and height."""
    m = np.asarray(cam_map, dtype=np.float64)
    h, w = m.shape
    x0, y0, x1, y1 = box
    inside = m[int(round(y0 * h)) : int(round(y1 * h)), int(round(x0 * w)) : int(round(x1 * w))].sum()
    return float(inside / max(m.sum(), 1e-12))
