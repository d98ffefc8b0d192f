"""Channel microscope: building an index over ~500 photos and querying it, server side.

Prints JSON and writes bench/results/microscope.json:
- build: listing and hashing the photos, then `build_index` (decode, resize and crop, one batched forward pass per
  micro-batch recording every main layer's per-channel maximum and its position) for the whole set; photos per second;
- size: the index on disk, per file;
- query: `query_channel` for random (layer, channel) pairs of every indexed layer, top 9 (the page's work per
  channel), the same with the patches written as PNG files (the `microscope` verb's work), and the first query
  after opening the index from disk (a new server process).
Data: ../shared/datasets/imagenet-samples and hymenoptera_data (train and val) by default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.timing import in_thread, ms_summary  # noqa: E402
from explain.microscope import (  # noqa: E402
    ImageCollection,
    build_index,
    folder_images,
    open_index,
    query_channel,
    query_json,
    store,  # noqa: E402
)
from explain.models import load_backbone  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"


def photos(folders: list[Path]) -> ImageCollection:
    """Every photo of the folders as one set, named by folder (imagenet-samples/…, hymenoptera_data/train/ants/…)."""
    parent = Path(os.path.commonpath([str(f.resolve()) for f in folders]))
    if parent in [f.resolve() for f in folders]:
        parent = parent.parent
    images, skipped = [], []
    for folder in folders:
        listed = folder_images(folder)
        prefix = folder.resolve().relative_to(parent).as_posix()
        images += [replace(i, name=f"{prefix}/{i.name}") for i in listed.images]
        skipped += [f"{prefix}/{s}" for s in listed.skipped]
    return ImageCollection(" + ".join(f.name for f in folders), tuple(images), tuple(skipped), str(parent))


def ms(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return (time.perf_counter() - start) * 1000, out


def run(args) -> dict:
    backbone = load_backbone(args.model)
    folders = [Path(p) for p in args.data]
    list_ms, collection = ms(photos, folders)
    out = Path(tempfile.mkdtemp(prefix="microscope-bench-")) / "index"
    load_before = os.getloadavg()
    build_ms, built = ms(build_index, backbone, collection, out)
    load_after = os.getloadavg()
    index = built.index
    sizes = {f.name: f.stat().st_size for f in sorted(out.iterdir())}

    rng = random.Random(0)
    pairs = [(li.name, rng.randrange(li.shape[0])) for li in index.layers for _ in range(max(1, args.queries // len(index.layers)))]
    rng.shuffle(pairs)
    store._OPEN.clear()
    first_ms, _ = ms(lambda: query_channel(open_index(out), *pairs[0], args.top))
    query_ms = [ms(query_channel, open_index(out), layer, channel, args.top)[0] for layer, channel in pairs]
    pngs = Path(tempfile.mkdtemp(prefix="microscope-patches-"))
    write_ms = [ms(lambda lc: query_json(query_channel(open_index(out), *lc, args.top), pngs), pair)[0] for pair in pairs[: args.queries // 4]]
    shutil.rmtree(pngs, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(out.parent, ignore_errors=True)
    return {
        "photos": len(index), "skipped": len(built.skipped), "layers": len(index.layers), "channels": int(index.values.shape[0]),
        "list_and_hash_s": round(list_ms / 1000, 2), "build_s": round(build_ms / 1000, 2),
        "photos_per_s": round(len(index) / (build_ms / 1000), 1),
        "load_average_before": [round(v, 2) for v in load_before], "load_average_after": [round(v, 2) for v in load_after],
        "size_mb": round(sum(sizes.values()) / 2**20, 1), "size_bytes_per_file": sizes,
        "query_first_after_open": round(first_ms, 2), "query_top": args.top, "query": ms_summary(query_ms),
        "query_and_write_pngs": ms_summary(write_ms), "index": str(out) if args.keep else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--data", nargs="+", default=[str(DATA / "imagenet-samples"), str(DATA / "hymenoptera_data")])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, every core)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="keep the index (its path is in the JSON)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {
        "bench": "microscope", "model": args.model, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(), "data": args.data, **in_thread(lambda: run(args)),
    }
    out = ROOT / "bench" / "results" / "microscope.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
