"""Asking an index about one channel: the photos that excite it most, each cut to the receptive field, and the histogram.

Pure numpy on the memory-mapped index: no network runs, so a query takes milliseconds (bench/microscope.py).
Boxes and patches are in the coordinates of the network's input: the photo resized and centre-cropped to
input_size × input_size by the backbone's own preprocessing (`explain.images.prepare(...).cropped`),
x0 ≤ x < x1, y0 ≤ y < y1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from explain.errors import LensError
from explain.images import save_png
from explain.limits import MAX_MICROSCOPE_TOP
from explain.microscope.store import ChannelIndex
from explain.receptive import Box, draw_box

DEFAULT_TOP = 9
HISTOGRAM_BINS = 30


@dataclass(frozen=True)
class TopPatch:
    """One of a channel's strongest photos: where its maximum is and the input pixels that can reach it."""

    rank: int  # 1 = the strongest
    image: int  # the photo's position in the index
    file: str  # where the photo came from (a path under the indexed folder, or its name in the set)
    value: float  # the photo's maximum of the channel
    y: int  # the maximum's row and column in the layer's map
    x: int
    box: Box  # (x0, y0, x1, y1) in the network's input (the centre crop), x1 and y1 exclusive
    patch: np.ndarray  # RGB uint8: the network's input inside the box


@dataclass(frozen=True)
class ChannelQuery:
    layer: str
    channel: int
    top: tuple[TopPatch, ...]
    values: np.ndarray  # (photos,) each photo's maximum of the channel
    counts: np.ndarray  # histogram of `values`
    edges: np.ndarray  # its bin edges (len(counts) + 1)
    input_size: int

    @property
    def median(self) -> float:
        return float(np.median(self.values))


def query_channel(index: ChannelIndex, layer: str, channel: int, k: int = DEFAULT_TOP, bins: int = HISTOGRAM_BINS) -> ChannelQuery:
    """The k photos with the highest maximum of (layer, channel), strongest first (ties: the earlier photo first)."""
    if not 1 <= int(k) <= MAX_MICROSCOPE_TOP:
        raise LensError(f"Ask for 1 to {MAX_MICROSCOPE_TOP} patches (MAX_MICROSCOPE_TOP); got {k}.")
    row = index.row(layer, channel)
    info = index.layer(layer)
    values = np.asarray(index.values[row], dtype=np.float32)
    positions = np.asarray(index.positions[row])
    order = np.argsort(-values, kind="stable")[: int(k)]  # ties: the earlier photo first
    span = index.spans[layer]
    top = []
    for rank, image in enumerate(order, 1):
        y, x = divmod(int(positions[image]), info.shape[2])
        box = span.box(y, x)
        x0, y0, x1, y1 = box
        top.append(TopPatch(rank, int(image), index.file_path(int(image)), float(values[image]), y, x, box, np.array(index.inputs[image, y0:y1, x0:x1])))
    counts, edges = np.histogram(values, bins=max(1, int(bins)))
    return ChannelQuery(layer, int(channel), tuple(top), values, counts, edges, int(index.inputs.shape[1]))


def enlarged(patch: np.ndarray, side: int = 128) -> np.ndarray:
    """A patch blown up with nearest neighbour to `side` on its longer edge (a 3×3 patch stays nine squares)."""
    h, w = patch.shape[:2]
    scale = side / max(h, w)
    if scale <= 1:
        return patch
    return cv2.resize(patch, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_NEAREST)


def in_context(index: ChannelIndex, patch: TopPatch) -> np.ndarray:
    """The whole network input of the patch's photo with the box drawn and the rest dimmed."""
    return draw_box(np.array(index.inputs[patch.image]), patch.box)


def query_json(query: ChannelQuery, out_dir: str | os.PathLike | None) -> dict:
    """The `microscope` verb's JSON; with out_dir each patch is written there as a PNG (its path is "patch")."""
    folder = Path(out_dir) if out_dir is not None else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    safe_layer = query.layer.replace("/", "_")
    top = []
    for p in query.top:
        written = None
        if folder is not None:
            written = str(save_png(p.patch, folder / f"{safe_layer}_c{query.channel}_{p.rank:02d}.png"))
        top.append({
            "rank": p.rank, "file": p.file, "image": p.image, "value": round(p.value, 6), "position": [p.y, p.x],
            "box": list(p.box), "patch": written,
        })
    return {
        "layer": query.layer, "channel": query.channel, "top": top, "input_size": query.input_size,
        "histogram": {"counts": query.counts.tolist(), "edges": [round(float(e), 6) for e in query.edges]},
    }
