"""Turning activations into channel grids, statistics and overlays."""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from explain.errors import LensError
from explain.hooks import LayerInfo, Recording, record_feature_maps
from explain.models import Backbone

COLORMAPS: dict[str, int] = {
    "viridis": cv2.COLORMAP_VIRIDIS,
    "magma": cv2.COLORMAP_MAGMA,
    "inferno": cv2.COLORMAP_INFERNO,
    "jet": cv2.COLORMAP_JET,
    "turbo": cv2.COLORMAP_TURBO,
    "gray": -1,
}
DEFAULT_COLORMAP = "viridis"
NORMALISATIONS = ("channel", "layer")  # each channel to its own range, or one range for the whole layer


def record_image(backbone: Backbone, tensor01: torch.Tensor) -> Recording:
    """Record every layer's feature map for one image (a [0, 1] tensor from images.prepare)."""
    return record_feature_maps(backbone.model, backbone.normalize(tensor01.to(backbone.device)))


@dataclass(frozen=True)
class LayerProbe:
    """A network's layers as one grey image at its input size finds them (shapes do not depend on the pixels)."""

    layers: list[LayerInfo]  # the layer list every page shows, in network order (see record_feature_maps)
    shapes: dict[str, tuple[int, ...]]  # (C, H, W) of every module with a feature-map output, listed or not


_PROBES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> {input side: LayerProbe}


def probe_layers(backbone: Backbone, size: int | None = None) -> LayerProbe:
    """The layers of a backbone's network (remembered per model object and input side: one forward pass each)."""
    size = size or backbone.preprocess.input_size
    by_size = _PROBES.setdefault(backbone.model, {})
    if size not in by_size:
        grey = torch.full((1, 3, size, size), 0.5, device=backbone.device)
        recording = record_feature_maps(backbone.model, backbone.normalize(grey))
        by_size[size] = LayerProbe(recording.layers, recording.shapes)
    return by_size[size]


def colorize(values: np.ndarray, cmap: str = "viridis") -> np.ndarray:
    """Map a 2-D array already scaled to [0, 1] to an RGB uint8 image."""
    if cmap not in COLORMAPS:
        raise LensError(f"Unknown colour map '{cmap}'. Choose one of: {', '.join(COLORMAPS)}.")
    gray = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if COLORMAPS[cmap] < 0:
        return np.repeat(gray[..., None], 3, axis=2)
    return cv2.cvtColor(cv2.applyColorMap(gray, COLORMAPS[cmap]), cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class ChannelGrid:
    image: np.ndarray  # RGB uint8
    channels: list[int]  # channel index of each tile, row-major
    columns: int
    tile: int  # tile side in pixels (the map is upscaled with nearest neighbour)
    tile_width: int = 0  # tile width in pixels (maps that are not square); 0: the same as tile
    gap: int = 2
    label_height: int = 0  # height of the strip above each tile that shows its channel number; 0: not numbered

    @property
    def numbered(self) -> bool:
        return self.label_height > 0

    def tile_box(self, k: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) in pixels of the k-th tile's map (below its number)."""
        return _tile_box(k, self.columns, self.tile, self.tile_width or self.tile, self.gap, self.label_height)


def _tile_box(k: int, columns: int, th: int, tw: int, gap: int, label_h: int) -> tuple[int, int, int, int]:
    r, col = divmod(k, columns)
    return r * (label_h + th + gap) + label_h, col * (tw + gap), th, tw


LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_SCALES = ((80, 0.5), (40, 0.4), (24, 0.35))  # (smallest tile side, font scale): below 24 px a number is unreadable


def _label_font(tile: int, tile_width: int, widest: str) -> tuple[float, int]:
    """(font scale, strip height) for channel numbers above tiles of this size; (0, 0) when none fits."""
    for smallest, scale in LABEL_SCALES:
        (w, h), _ = cv2.getTextSize(widest, LABEL_FONT, scale, 1)
        if tile >= smallest and w <= tile_width - 2:
            return scale, h + 5
    return 0.0, 0


def channel_grid(
    fmap: torch.Tensor,
    channels: list[int] | None = None,
    normalise: str = "channel",
    cmap: str = "viridis",
    tile: int | None = None,
    gap: int = 2,
    max_side: int = 1600,
    numbered: bool = True,
) -> ChannelGrid:
    """Compose the channels of one layer's map (C, H, W) into one image, each tile under its channel number.

    normalise: "channel" scales each channel to its own min..max (shows every pattern);
    "layer" uses one scale for the whole layer (shows which channels are strong).
    numbered: write each tile's channel number in a white strip above it (tiles under 24 px get none).
    """
    if fmap.ndim != 3:
        raise LensError(f"A feature map must be (channels, height, width), got shape {tuple(fmap.shape)}.")
    c, h, w = fmap.shape
    channels = list(range(c)) if channels is None else [int(i) for i in channels]
    if not channels:
        raise LensError("No channels selected.")
    bad = [i for i in channels if not 0 <= i < c]
    if bad:
        raise LensError(f"Channel {bad[0]} does not exist: this layer has channels 0..{c - 1}.")
    if normalise not in NORMALISATIONS:
        raise LensError("normalise must be 'channel' or 'layer'.")
    data = _as_numpy(fmap)[channels]
    if normalise == "channel":
        lo = data.min(axis=(1, 2), keepdims=True)
        hi = data.max(axis=(1, 2), keepdims=True)
    else:
        lo, hi = data.min(), data.max()
    scaled = (data - lo) / np.maximum(hi - lo, 1e-8)
    n = len(channels)
    cols = math.ceil(math.sqrt(n * h / max(w, 1)))
    rows = math.ceil(n / cols)
    if tile is None:
        tile = max(8, min(96, (max_side - gap * cols) // cols))
    tile = max(1, min(tile, (max_side - gap * cols) // cols))
    th, tw = tile, max(1, round(tile * w / h))
    scale, label_h = _label_font(th, tw, str(max(channels))) if numbered else (0.0, 0)
    canvas = np.zeros((rows * (label_h + th + gap) - gap, cols * (tw + gap) - gap), dtype=np.float32)
    filled = np.zeros(canvas.shape, dtype=bool)
    for k in range(n):
        y, x, _, _ = _tile_box(k, cols, th, tw, gap, label_h)
        canvas[y : y + th, x : x + tw] = cv2.resize(scaled[k], (tw, th), interpolation=cv2.INTER_NEAREST)
        filled[y : y + th, x : x + tw] = True
    image = colorize(canvas, cmap)
    image[~filled] = 255  # white gaps between tiles, white strips for the numbers
    for k in range(n if label_h else 0):
        y, x, _, _ = _tile_box(k, cols, th, tw, gap, label_h)
        cv2.putText(image, str(channels[k]), (x + 1, y - 4), LABEL_FONT, scale, (40, 40, 40), 1, cv2.LINE_AA)
    return ChannelGrid(image, channels, cols, th, tw, gap, label_h)


def is_vector(fmap_or_shape) -> bool:
    """True when a layer's output (C, H, W) has one position: each channel is one number, not a map (global pooling)."""
    shape = tuple(fmap_or_shape.shape if hasattr(fmap_or_shape, "shape") else fmap_or_shape)
    return len(shape) == 3 and shape[1] == shape[2] == 1


def channel_values(fmap: torch.Tensor, k: int | None = None) -> tuple[list[int], list[float]]:
    """The k channels with the highest value of a one-position layer (see is_vector), strongest first: (channels, values)."""
    values = _as_numpy(fmap).reshape(fmap.shape[0], -1).mean(1)
    order = top_channels(fmap, values.size if k is None else k)
    return order, [float(values[i]) for i in order]


@dataclass(frozen=True)
class ChannelStats:
    mean: np.ndarray
    max: np.ndarray
    std: np.ndarray
    active_fraction: np.ndarray  # share of positions > 0


def _as_numpy(fmap) -> np.ndarray:
    return fmap.numpy() if isinstance(fmap, torch.Tensor) else np.asarray(fmap)


def channel_stats(fmap: torch.Tensor) -> ChannelStats:
    """Per-channel statistics of one layer's map (C, H, W)."""
    flat = _as_numpy(fmap).reshape(fmap.shape[0], -1)
    return ChannelStats(
        mean=flat.mean(1),
        max=flat.max(1),
        std=flat.std(1),
        active_fraction=(flat > 0).mean(1),
    )


def top_channels(fmap: torch.Tensor, k: int = 8) -> list[int]:
    """Indices of the k channels with the highest mean activation, strongest first."""
    means = _as_numpy(fmap).reshape(fmap.shape[0], -1).mean(1)
    k = max(1, min(int(k), means.size))
    return [int(i) for i in np.argsort(-means, kind="stable")[:k]]


def channel_image(fmap: torch.Tensor, channel: int, size: tuple[int, int], cmap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """One channel scaled to its own range, upscaled smoothly to size=(width, height), coloured."""
    c = fmap.shape[0]
    if not 0 <= channel < c:
        raise LensError(f"Channel {channel} does not exist: this layer has channels 0..{c - 1}.")
    ch = _as_numpy(fmap)[channel]
    scaled = (ch - ch.min()) / max(float(ch.max() - ch.min()), 1e-8)
    return colorize(cv2.resize(scaled, size, interpolation=cv2.INTER_CUBIC).clip(0, 1), cmap)


def overlay_channel(
    image: np.ndarray, fmap: torch.Tensor, channel: int, alpha: float = 0.5, cmap: str = DEFAULT_COLORMAP
) -> np.ndarray:
    """One channel laid over the photo it came from (image: RGB uint8 network input), in the colours of channel_image."""
    heat = channel_image(fmap, channel, (image.shape[1], image.shape[0]), cmap)
    return cv2.addWeighted(image, 1.0 - alpha, heat, alpha, 0.0)
