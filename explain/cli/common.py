"""What every verb shares: the --model/--device options, loading the model, reading images, one-line errors."""

from __future__ import annotations

import argparse

from explain.errors import LensError
from explain.models import DEFAULT_BACKBONE


class PartialFailure(Exception):
    """Some inputs failed; the data for the rest is still printed."""

    def __init__(self, data, text: str, message: str):
        super().__init__(message)
        self.data, self.text = data, text


def per_image_outcome(records: list[dict], lines: list[str]) -> tuple[list[dict], str]:
    """A verb's (records, text) over several images; PartialFailure when some failed (the rest are still printed)."""
    text = "\n".join(lines)
    failed = [r for r in records if "error" in r]
    if failed:
        raise PartialFailure(records, text, f"{len(failed)} of {len(records)} images failed: {failed[0]['error']}")
    return records, text


def add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=DEFAULT_BACKBONE, help=f"registry name or weights file (default: {DEFAULT_BACKBONE})")
    add_device(p)


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")


def device(text: str | None):
    """--device as a torch.device; a LensError for a name torch does not know or a GPU this machine lacks."""
    import torch

    if text is None:
        return None
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise LensError(f"Unknown device '{text}'. Use cpu or cuda.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LensError(f"--device {text}: this machine has no CUDA GPU. Use --device cpu.")
    if device.type not in ("cpu", "cuda"):
        raise LensError(f"Device '{text}' is not supported here. Use cpu or cuda.")
    return device


def load(args):
    from explain.models import load_model

    return load_model(args.model, device=device(args.device))


def read_images(paths: list[str], fields: dict) -> tuple[list[dict], list, list[int]]:
    """Read every image; a record per path (with `fields`, or an "error"), the images, and the records they fill."""
    from explain.images import read_image

    records: list[dict] = []
    images, slots = [], []
    for path in paths:
        try:
            images.append(read_image(path))
            slots.append(len(records))
            records.append({"file": path, **fields})
        except LensError as exc:
            records.append({"file": path, "error": str(exc)})
    return records, images, slots


def scores(scores) -> list[dict]:
    return [{"index": s.index, "label": s.label, "prob": round(s.prob, 6)} for s in scores]


