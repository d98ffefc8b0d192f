"""A channel index on disk: where the shared cache is, the folder's manifest and arrays, opening it memory-mapped.

See explain/microscope/index.py for what the arrays hold and how they are built.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import weakref
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from explain.errors import LensError
from explain.limits import MAX_INDEX_CACHE_MB
from explain.models import Backbone
from explain.receptive import Span

INDEX_FORMAT = "cnn-lens-channel-index"
INDEX_VERSION = 1
INDEX_DIR_ENV = "CNN_LENS_INDEX_DIR"
MANIFEST = "manifest.json"
OPEN_KEPT = 4  # indexes kept open (memory-mapped) in this process


def index_root() -> Path:
    """Where indexes are cached: $CNN_LENS_INDEX_DIR, else $XDG_CACHE_HOME/cnn-lens/index, else ~/.cache/cnn-lens/index."""
    if os.environ.get(INDEX_DIR_ENV):
        return Path(os.environ[INDEX_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnn-lens" / "index"


_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def weights_fingerprint(model: nn.Module) -> str:
    """A digest of a network's architecture and every weight and buffer (computed once per model object)."""
    if model not in _FINGERPRINTS:
        digest = hashlib.blake2b(type(model).__name__.encode(), digest_size=16)
        for name, tensor in model.state_dict().items():
            data = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{tuple(data.shape)}:{data.dtype}".encode())
            digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
        _FINGERPRINTS[model] = digest.hexdigest()
    return _FINGERPRINTS[model]


# ---------------------------------------------------------------- the index on disk


@dataclass(frozen=True)
class IndexLayer:
    name: str
    type: str
    shape: tuple[int, int, int]  # (C, H, W)
    offset: int  # first row of this layer's channels in values/positions


@dataclass(frozen=True)
class ChannelIndex:
    """An index opened from disk; its arrays are memory-mapped (read-only)."""

    path: Path
    manifest: dict
    layers: tuple[IndexLayer, ...]
    files: tuple[str, ...]  # each photo's name inside its set
    values: np.ndarray  # (channels of all layers, photos) float32
    positions: np.ndarray  # (channels of all layers, photos): y * W + x
    inputs: np.ndarray  # (photos, S, S, 3) uint8: the network's input, unnormalised
    spans: dict[str, Span]

    def __len__(self) -> int:
        return len(self.files)

    @property
    def backbone(self) -> str:
        return self.manifest["backbone"]

    def layer(self, name: str) -> IndexLayer:
        for info in self.layers:
            if info.name == name:
                return info
        names = ", ".join(li.name for li in self.layers[:6])
        raise LensError(f"Layer '{name}' is not in this index. Indexed layers: {names}{', …' if len(self.layers) > 6 else ''}.")

    def row(self, layer: str, channel: int) -> int:
        """The row of (layer, channel) in values and positions."""
        info = self.layer(layer)
        if not 0 <= int(channel) < info.shape[0]:
            raise LensError(f"Channel {channel} does not exist: layer '{layer}' has channels 0..{info.shape[0] - 1}.")
        return info.offset + int(channel)

    def file_path(self, image: int) -> str:
        """Where photo `image` came from: a path under the indexed folder, or its name in the set."""
        root = self.manifest["set"].get("root", "")
        return os.path.join(root, self.files[image]) if root else self.files[image]

    def matches(self, backbone: Backbone) -> bool:
        """True when this index was built by exactly this network (weights and preprocessing)."""
        return self.manifest["weights"] == weights_fingerprint(backbone.model) and self.manifest["preprocess"] == json_preprocess(backbone)

    def check(self, backbone: Backbone) -> None:
        if not self.matches(backbone):
            raise LensError(f"This index was built for {self.backbone} with other weights or preprocessing than {backbone.name}. Build an index for {backbone.name}.")


def json_preprocess(backbone: Backbone) -> dict:
    """The backbone's preprocessing as the manifest keeps it (JSON: tuples become lists)."""
    return json.loads(json.dumps(asdict(backbone.preprocess)))


_OPEN: OrderedDict = OrderedDict()


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LensError(f"'{path}' is not a channel index (no {MANIFEST}). Build one with `python -m explain index DIR --out {path}`.") from None
    except (OSError, ValueError) as exc:
        raise LensError(f"The index '{path}' cannot be read ({type(exc).__name__}). Build it again.") from None
    if manifest.get("format") != INDEX_FORMAT or manifest.get("version") != INDEX_VERSION:
        raise LensError(f"'{path}' is not a channel index of this version of CNN Lens. Build it again.")
    return manifest


def open_index(path: str | os.PathLike) -> ChannelIndex:
    """Open an index folder (memory-mapped; kept open per process, so the next query is instant)."""
    path = Path(path).resolve()
    try:
        stamp = (path / MANIFEST).stat().st_mtime_ns
    except OSError:
        stamp = None
    if (path, stamp) in _OPEN:
        _OPEN.move_to_end((path, stamp))
        return _OPEN[(path, stamp)]
    manifest = read_manifest(path)
    try:
        values = np.load(path / "values.npy", mmap_mode="r")
        positions = np.load(path / "positions.npy", mmap_mode="r")
        inputs = np.load(path / "inputs.npy", mmap_mode="r")
        with np.load(path / "spans.npz") as stored:
            spans = {li["name"]: Span(*stored[f"{li['name']}@y"], *stored[f"{li['name']}@x"]) for li in manifest["layers"]}
    except (OSError, ValueError, KeyError) as exc:
        raise LensError(f"The index '{path}' is incomplete or damaged ({type(exc).__name__}). Build it again.") from None
    layers = tuple(IndexLayer(li["name"], li["type"], tuple(li["shape"]), li["offset"]) for li in manifest["layers"])
    files = tuple(i["name"] for i in manifest["images"])
    if values.shape != (sum(li.shape[0] for li in layers), len(files)) or values.shape != positions.shape or len(inputs) != len(files):
        raise LensError(f"The index '{path}' is incomplete or damaged (its arrays disagree with its manifest). Build it again.")
    index = ChannelIndex(path, manifest, layers, files, values, positions, inputs, spans)
    _OPEN[(path, stamp)] = index
    while len(_OPEN) > OPEN_KEPT:
        _OPEN.popitem(last=False)
    try:
        os.utime(path)  # the cache drops the least recently used indexes first
    except OSError:
        pass
    return index


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prune_cache(keep: Path | None = None, limit_mb: int = MAX_INDEX_CACHE_MB) -> list[Path]:
    """Remove the least recently used indexes of the shared cache until it holds at most limit_mb; returns what went."""
    root = index_root()
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists()]
    sizes = {p: folder_bytes(p) for p in folders}
    total = sum(sizes.values())
    removed = []
    for path in sorted(folders, key=lambda p: p.stat().st_mtime):
        if total <= limit_mb * 2**20:
            break
        if keep is not None and path.resolve() == Path(keep).resolve():
            continue
        shutil.rmtree(path, ignore_errors=True)
        total -= sizes[path]
        removed.append(path)
    return removed
