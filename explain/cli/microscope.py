"""Verbs of the channel microscope: index (a photo set, once per network) and microscope (one channel's top patches)."""

from __future__ import annotations

import argparse

from explain.cli import common
from explain.cli.common import add_model
from explain.errors import LensError
from explain.limits import MAX_MICROSCOPE_TOP


# --- index --------------------------------------------------------------------------------
def args_index(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="DIR", nargs="?", default=None, help="a folder of photos (sub-folders too) or a .zip of them")
    p.add_argument("--samples", action="store_true", help="index the default set instead: scikit-image's photos and crops of them (offline)")
    add_model(p)
    p.add_argument("--out", default=None, help="the index folder (default: the shared cache, $CNN_LENS_INDEX_DIR or ~/.cache/cnn-lens/index)")
    p.add_argument("--layers", default="main", help="main (default: the main layers), all, or layer names separated by commas")
    p.add_argument("--rebuild", action="store_true", help="build again even when a matching index is there")


def _layers(text: str) -> list[str] | None:
    if text == "main":
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise LensError("--layers needs main, all, or layer names separated by commas.")
    return names


def cmd_index(args):
    from explain.microscope import ensure_index, path_images, sample_images
    from explain.microscope.store import folder_bytes

    if (args.source is None) == (not args.samples):
        raise LensError("Give exactly one of DIR (a folder or zip of photos) and --samples.")
    collection = sample_images() if args.samples else path_images(args.source)
    backbone = common.load(args)
    built = ensure_index(backbone, collection, args.out, _layers(args.layers), rebuild=args.rebuild)
    index = built.index
    data = {
        "index": str(built.path), "model": backbone.name, "set": collection.title, "images": len(index),
        "layers": [{"name": li.name, "type": li.type, "shape": list(li.shape)} for li in index.layers],
        "reused": built.reused, "seconds": round(built.seconds, 3), "size_bytes": folder_bytes(built.path),
        "skipped": list(built.skipped),
    }
    verb = "found" if built.reused else f"built in {built.seconds:.1f} s"
    text = (f"index of {len(index)} photos × {len(index.layers)} layers ({index.values.shape[0]} channels) for {backbone.name} "
            f"{verb}: {built.path} ({data['size_bytes'] / 2**20:.1f} MB)")
    if built.skipped:
        text += f"\nskipped {len(built.skipped)}: " + "; ".join(built.skipped[:5])
    return data, text


# --- microscope ---------------------------------------------------------------------------
def args_microscope(p: argparse.ArgumentParser) -> None:
    p.add_argument("--index", required=True, help="an index folder made by `python -m explain index`")
    p.add_argument("--layer", required=True, help="an indexed layer (see the index's JSON)")
    p.add_argument("--channel", type=int, required=True, help="the channel")
    p.add_argument("--top", type=int, default=9, help=f"how many patches, 1..{MAX_MICROSCOPE_TOP} (default 9)")
    p.add_argument("--out-dir", default=None, help="write each patch there as a PNG (default: no files)")


def cmd_microscope(args):
    from explain.microscope import open_index, query_channel, query_json

    index = open_index(args.index)
    query = query_channel(index, args.layer, args.channel, args.top)
    data = {"index": str(index.path), "model": index.backbone, **query_json(query, args.out_dir)}
    lines = [f"{args.layer} channel {args.channel} of {index.backbone}: the {len(query.top)} strongest of {len(index)} photos "
             f"(boxes in the {query.input_size}×{query.input_size} network input)"]
    for row in data["top"]:
        x0, y0, x1, y1 = row["box"]
        lines.append(f"{row['rank']:>3}. {row['value']:>10.4f}  {row['file']}  box x {x0}..{x1 - 1}, y {y0}..{y1 - 1}" + (f"  → {row['patch']}" if row["patch"] else ""))
    lines.append(f"median over the set {query.median:.4f}")
    return data, "\n".join(lines)
