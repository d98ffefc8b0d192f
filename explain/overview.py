"""The whole network in one picture: the photo, each main layer's strongest channels, the top classes.

Built from one `Recording` (every layer of one forward pass), so the page that draws it reuses the recording
the Feature maps page already made. CNN Explainer draws this for one tiny network; here it is any backbone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from explain.errors import LensError
from explain.featuremaps import DEFAULT_COLORMAP, colorize, is_vector, top_channels
from explain.hooks import Recording
from explain.limits import MAX_OVERVIEW_CHANNELS

DEFAULT_OVERVIEW_CHANNELS = 6


@dataclass(frozen=True)
class OverviewColumn:
    """One main layer: its name, type, output shape and the channels shown, strongest first."""

    layer: str
    type: str
    shape: tuple[int, ...]  # (C, H, W)
    channels: tuple[int, ...]
    means: tuple[float, ...]  # each shown channel's mean activation
    vector: bool  # one number per channel (global pooling): tiles are flat colours on one scale


@dataclass(frozen=True)
class ClassRow:
    index: int
    label: str
    prob: float


@dataclass(frozen=True)
class NetworkOverview:
    """The composed picture and where each thumbnail lies in it."""

    image: np.ndarray  # RGB uint8
    columns: tuple[OverviewColumn, ...]
    top: tuple[ClassRow, ...]
    tile: int
    gap: int
    photo_width: int  # the photo's column, left of the layer columns

    def tile_box(self, column: int, row: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) in pixels of one thumbnail (column: index into `columns`, row: rank)."""
        left = self.photo_width + self.gap * 2 + column * (self.tile + self.gap)
        return row * (self.tile + self.gap), left, self.tile, self.tile

    def thumbnail_at(self, px: float, py: float) -> tuple[str, int] | None:
        """(layer, channel) of the thumbnail under the pixel (px, py) of `image`, None between thumbnails."""
        for ci, col in enumerate(self.columns):
            for row, channel in enumerate(col.channels):
                top, left, h, w = self.tile_box(ci, row)
                if left <= px < left + w and top <= py < top + h:
                    return col.layer, channel
        return None


def _scaled(fmap: np.ndarray) -> np.ndarray:
    lo, hi = fmap.min(), fmap.max()
    return (fmap - lo) / max(float(hi - lo), 1e-8)


def network_overview(
    recording: Recording,
    photo: np.ndarray,
    categories: list[str],
    channels: int = DEFAULT_OVERVIEW_CHANNELS,
    tile: int = 48,
    gap: int = 4,
    top_k: int = 5,
    cmap: str = DEFAULT_COLORMAP,
) -> NetworkOverview:
    """Compose the overview of one recorded forward pass (photo: the network's input, RGB uint8)."""
    if not 1 <= channels <= MAX_OVERVIEW_CHANNELS:
        raise LensError(f"Show 1 to {MAX_OVERVIEW_CHANNELS} channels per layer (got {channels}).")
    mains = [li for li in recording.layers if li.main]
    if not mains:
        raise LensError("This network has no layer with a feature map to show.")
    columns = []
    for li in mains:
        fmap = recording.maps[li.name]
        shown = top_channels(fmap, min(channels, fmap.shape[0]))
        means = fmap.reshape(fmap.shape[0], -1).mean(1)
        columns.append(OverviewColumn(li.name, li.type, tuple(li.shape), tuple(shown), tuple(float(means[c]) for c in shown), is_vector(fmap)))
    rows = max(len(c.channels) for c in columns)
    photo_width = tile * 2 + gap
    height = rows * (tile + gap) - gap
    width = photo_width + gap * 2 + len(columns) * (tile + gap) - gap
    canvas = np.full((height, width, 3), 255, np.uint8)
    side = min(photo_width, height)
    canvas[:side, :side] = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA)
    result = NetworkOverview(canvas, tuple(columns), (), tile, gap, photo_width)
    for ci, col in enumerate(columns):
        fmap = recording.maps[col.layer].numpy()
        if col.vector:  # flat tiles on the layer's own scale: which numbers are large
            values = fmap.reshape(fmap.shape[0])
            scaled = _scaled(values)
        for row, channel in enumerate(col.channels):
            top, left, h, w = result.tile_box(ci, row)
            if col.vector:
                patch = np.full((h, w), scaled[channel], np.float32)
            else:
                patch = cv2.resize(_scaled(fmap[channel]).astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
            canvas[top : top + h, left : left + w] = colorize(patch, cmap)
    probs = torch.softmax(recording.logits[0].float(), 0)
    k = max(1, min(top_k, probs.numel()))
    values, indices = torch.topk(probs, k)
    top = tuple(ClassRow(int(i), categories[int(i)] if int(i) < len(categories) else str(int(i)), float(v)) for v, i in zip(values, indices))
    return NetworkOverview(canvas, tuple(columns), top, tile, gap, photo_width)
