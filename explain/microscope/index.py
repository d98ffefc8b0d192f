"""The channel index: for every photo of a set, every main layer and every channel, the maximum and where it is.

Built once per (network weights, preprocessing, photo set, layers) by one batched forward pass per photo
batch, recorded with `explain.hooks.hooked`, and kept on disk so that every session and the command line
reuse it. A folder holds it:

    manifest.json   what it was built from: backbone, weights fingerprint, preprocessing, the photos
                    (name, sha1), the layers (name, type, [C, H, W], first row), the key naming all of it
    values.npy      float32 (channels of all layers, photos): each photo's maximum of each channel
    positions.npy   uint16/uint32, the same shape: where that maximum is, y * W + x in the layer's map
    inputs.npy      uint8 (photos, S, S, 3): each photo as the network saw it (the centre crop), to cut patches from
    spans.npz       per layer, the receptive-field box of every row and column (explain.receptive)

The arrays are read memory-mapped, so a query reads one row of values, not the whole index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from explain.errors import LensError
from explain.featuremaps import probe_layers
from explain.hooks import LayerInfo, hooked
from explain.images import prepare
from explain.jobs import ProgressLog, StopSignal, stop_requested
from explain.microscope.sets import ImageCollection
from explain.microscope.store import (
    INDEX_FORMAT,
    INDEX_VERSION,
    MANIFEST,
    ChannelIndex,
    index_root,
    json_preprocess,
    open_index,
    prune_cache,
    read_manifest,
    weights_fingerprint,
)
from explain.models import Backbone
from explain.receptive import trace_network


def index_layers(backbone: Backbone, layers: list[str] | None = None) -> list[LayerInfo]:
    """The layers an index records: the main layers (those the overview shows), or the named ones, in network order."""
    probed = probe_layers(backbone).layers
    if layers is None:
        return [li for li in probed if li.main]
    if layers == ["all"]:
        return list(probed)
    by_name = {li.name: li for li in probed}
    unknown = [n for n in layers if n not in by_name]
    if unknown:
        raise LensError(f"Unknown layer '{unknown[0]}' (or one without a feature map). List the layers with `python -m explain features IMAGE`.")
    return [li for li in probed if li.name in set(layers)]


def index_key(backbone: Backbone, collection: ImageCollection, infos: list[LayerInfo]) -> str:
    """The digest of everything an index's numbers depend on: same key, same numbers."""
    recipe = {
        "format": INDEX_FORMAT, "version": INDEX_VERSION, "weights": weights_fingerprint(backbone.model),
        "preprocess": asdict(backbone.preprocess), "set": collection.digest, "layers": [li.name for li in infos],
    }
    return hashlib.sha1(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def cache_path(backbone: Backbone, key: str) -> Path:
    """The folder of an index in the shared cache: readable name of the architecture, then the key."""
    label = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in (backbone.base or backbone.name))[:40]
    return index_root() / f"{label}-{key[:20]}"


# ---------------------------------------------------------------- building


@dataclass(frozen=True)
class IndexBuild:
    """What a build (or a look-up) gave: the index (None when stopped), where it is, and how long it took."""

    index: ChannelIndex | None
    path: Path
    stopped: bool = False
    reused: bool = False
    seconds: float = 0.0
    skipped: tuple[str, ...] = ()


def _spans(backbone: Backbone, infos: list[LayerInfo]) -> dict[str, np.ndarray]:
    """Each layer's boxes, rows and columns apart (they depend on the architecture and the input size, not on the pixels)."""
    size = backbone.preprocess.input_size
    trace = trace_network(backbone.model, torch.zeros(1, 3, size, size, device=backbone.device))
    out = {}
    for li in infos:
        span = trace.spans[li.name]
        out[f"{li.name}@y"] = np.stack([span.y_lo, span.y_hi]).astype(np.int32)
        out[f"{li.name}@x"] = np.stack([span.x_lo, span.x_hi]).astype(np.int32)
    return out


def _check_target(out: Path) -> None:
    """Refuse, before any work, to write an index over a file or a folder of other things."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise LensError(f"'{out}' exists and is not a channel index: give another --out folder.")


def _place(tmp: Path, out: Path, key: str) -> Path:
    """Move a finished build to `out`: replace an older index there, keep one another build just finished with the same key."""
    if out.exists():
        try:
            old = read_manifest(out)
        except LensError:
            if any(out.iterdir()):
                shutil.rmtree(tmp, ignore_errors=True)
                raise LensError(f"'{out}' exists and is not a channel index: give another --out folder.") from None
            old = None
        if old is not None and old.get("key") == key and (out / "inputs.npy").exists():
            shutil.rmtree(tmp, ignore_errors=True)  # another session built the same index meanwhile
            return out
        shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    return out


def build_index(
    backbone: Backbone,
    collection: ImageCollection,
    out: str | os.PathLike | None = None,
    layers: list[str] | None = None,
    callback=None,
    should_stop: StopSignal = None,
) -> IndexBuild:
    """Record every photo's maximum (and its position) of every channel of every indexed layer, and save the index.

    A long job (explain.jobs): callback(Progress) after each batch of backbone.micro_batch photos, should_stop asked
    after each; a stopped build saves nothing (result.stopped). out: the index folder (default: the shared cache).
    layers: None for the main layers, ["all"] for every layer with a feature map, or names.
    """
    start = time.perf_counter()
    infos = index_layers(backbone, layers)
    key = index_key(backbone, collection, infos)
    out = Path(out) if out is not None else cache_path(backbone, key)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        result = _record(backbone, collection, infos, tmp, callback, should_stop)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if result is None:
        shutil.rmtree(tmp, ignore_errors=True)
        return IndexBuild(None, out, stopped=True, seconds=time.perf_counter() - start)
    kept, skipped = result
    seconds = time.perf_counter() - start
    manifest = {
        "format": INDEX_FORMAT, "version": INDEX_VERSION, "key": key, "backbone": backbone.name, "base": backbone.base,
        "source": backbone.source, "weights": weights_fingerprint(backbone.model), "preprocess": json_preprocess(backbone),
        "set": {"title": collection.title, "digest": collection.digest, "root": collection.root, "count": len(kept)},
        "images": [{"name": item.name, "sha1": item.digest} for item in kept],
        "layers": _layer_rows(infos), "skipped": skipped, "seconds": round(seconds, 3),
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")  # written last: a complete index
    placed = _place(tmp, out, key)
    if placed.parent == index_root():
        prune_cache(keep=placed)
    return IndexBuild(open_index(placed), placed, seconds=seconds, skipped=tuple(skipped))


def _layer_rows(infos: list[LayerInfo]) -> list[dict]:
    rows, offset = [], 0
    for li in infos:
        rows.append({"name": li.name, "type": li.type, "shape": list(li.shape), "offset": offset})
        offset += li.shape[0]
    return rows


def _record(backbone: Backbone, collection: ImageCollection, infos: list[LayerInfo], tmp: Path, callback, should_stop):
    """The forward passes, written into tmp; None when stopped, else (photos kept, "file: why" of those skipped)."""
    size = backbone.preprocess.input_size
    n = len(collection)
    rows = _layer_rows(infos)
    total_channels = sum(li.shape[0] for li in infos)
    positions_dtype = np.uint16 if max(li.shape[1] * li.shape[2] for li in infos) <= 2**16 else np.uint32
    values = np.zeros((total_channels, n), np.float32)
    positions = np.zeros((total_channels, n), positions_dtype)
    inputs = np.lib.format.open_memmap(tmp / "inputs.npy", mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
    np.savez(tmp / "spans.npz", **_spans(backbone, infos))
    log = ProgressLog(n, callback)
    skipped, kept = list(collection.skipped), []
    names = [li.name for li in infos]
    step = max(1, backbone.micro_batch)
    log.report(0, "index", {})
    with torch.no_grad(), hooked(backbone.model, names) as outputs:
        for first in range(0, n, step):
            batch = []
            for item in collection.images[first : first + step]:
                try:
                    cropped = prepare(item.load(), backbone.preprocess).cropped
                except LensError as exc:
                    skipped.append(f"{item.name}: {exc}")
                    continue
                if cropped.shape[:2] != (size, size):
                    raise LensError(f"{backbone.name} crops photos smaller than its input ({size} px): its preprocessing cannot be indexed.")
                inputs[len(kept) + len(batch)] = cropped
                batch.append(item)
            if batch:
                at = len(kept)
                x = torch.from_numpy(np.ascontiguousarray(inputs[at : at + len(batch)])).permute(0, 3, 1, 2).float().div_(255.0)
                backbone.model(backbone.normalize(x.to(backbone.device)))
                for row, name in zip(rows, names):
                    peak, where = outputs[name].flatten(2).max(2)  # (B, C): each photo's maximum per channel, first place of it
                    values[row["offset"] : row["offset"] + peak.shape[1], at : at + len(batch)] = peak.T.float().cpu().numpy()
                    positions[row["offset"] : row["offset"] + peak.shape[1], at : at + len(batch)] = where.T.cpu().numpy()
                kept.extend(batch)
            log.report(min(first + step, n), "index", {"photos": float(len(kept))})
            if stop_requested(should_stop) and first + step < n:
                del inputs
                return None
    inputs.flush()
    del inputs
    if len(kept) < n:  # photos that could not be decoded: the arrays hold only the others
        whole = np.load(tmp / "inputs.npy", mmap_mode="r")
        np.save(tmp / "inputs.part.npy", whole[: len(kept)])
        del whole
        os.replace(tmp / "inputs.part.npy", tmp / "inputs.npy")
        if not kept:
            raise LensError(f"None of the photos of {collection.title} could be read. Skipped: {'; '.join(skipped[:5])}")
    np.save(tmp / "values.npy", np.ascontiguousarray(values[:, : len(kept)]))
    np.save(tmp / "positions.npy", np.ascontiguousarray(positions[:, : len(kept)]))
    return kept, skipped


def find_index(backbone: Backbone, collection: ImageCollection, out: str | os.PathLike | None = None, layers: list[str] | None = None) -> ChannelIndex | None:
    """The index of exactly this network and these photos when one is on disk (at `out`, or in the shared cache), else None."""
    key = index_key(backbone, collection, index_layers(backbone, layers))
    path = Path(out) if out is not None else cache_path(backbone, key)
    try:
        if read_manifest(path).get("key") != key:
            return None
        index = open_index(path)
    except LensError:
        return None
    return index if index.manifest.get("key") == key else None


def ensure_index(
    backbone: Backbone, collection: ImageCollection, out: str | os.PathLike | None = None, layers: list[str] | None = None,
    callback=None, should_stop: StopSignal = None, rebuild: bool = False,
) -> IndexBuild:
    """The index of this network and these photos: the one on disk when its key matches, else a new build (a long job)."""
    start = time.perf_counter()
    found = None if rebuild else find_index(backbone, collection, out, layers)
    if found is not None:
        return IndexBuild(found, found.path, reused=True, seconds=time.perf_counter() - start, skipped=tuple(found.manifest.get("skipped", ())))
    return build_index(backbone, collection, out, layers, callback, should_stop)


