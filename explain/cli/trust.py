"""`trust`: how far each method's map can be trusted, image by image (faithfulness and sanity checks)."""

from __future__ import annotations

import argparse

from explain.cam import CAM_METHODS
from explain.cli import common
from explain.cli.common import add_model, per_image_outcome
from explain.errors import LensError
from explain.limits import MAX_TRUST_IMAGES
from explain.trust import DEFAULT_TRUST_METHODS, FILLS


def _r(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


def args_trust(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMAGE")
    add_model(p)
    p.add_argument("--methods", default=",".join(DEFAULT_TRUST_METHODS),
                   help=f"comma-separated, of: {', '.join(CAM_METHODS)}, or 'all' (default: {','.join(DEFAULT_TRUST_METHODS)})")
    p.add_argument("--layer", default=None, help="layer for the layer methods; 'a+b' averages several (default: the model's Grad-CAM layer)")
    p.add_argument("--target", default=None, help="class name or index (default: each image's top-1 class)")
    p.add_argument("--steps", type=int, default=16, help="points on the deletion and insertion curves (default 16)")
    p.add_argument("--fill", default="blur", choices=FILLS, help="what removed pixels become (default: blur)")
    p.add_argument("--no-road", action="store_true", help="skip ROAD (a linear solve per point: about a second per method on a CPU)")
    p.add_argument("--no-randomisation", action="store_true", help="skip the cascading model randomisation")
    p.add_argument("--no-class-check", action="store_true", help="skip the class-sensitivity check")
    p.add_argument("--samples", type=int, default=16, help="SmoothGrad: noisy copies (default 16)")
    p.add_argument("--seed", type=int, default=0)


def method_record(m, report) -> dict:
    """One method's scores as JSON (the fields README's `trust` section lists)."""
    half = report.target_prob / 2
    return {
        "method": m.method,
        "layer": m.layer,
        "deletion_auc": _r(m.deletion.auc),
        "insertion_auc": _r(m.insertion.auc),
        "road": _r(sum(m.road.probs) / len(m.road.probs)) if m.road else None,
        "random_deletion_auc": _r(report.random_deletion.auc),
        "random_insertion_auc": _r(report.random_insertion.auc),
        "random_road": _r(sum(report.random_road.probs) / len(report.random_road.probs)) if report.random_road else None,
        "inverted_deletion_auc": _r(m.inverted_deletion.auc),
        "deletion_half": _r(m.deletion.fraction_at(half), 4),
        "random_deletion_half": _r(report.random_deletion.fraction_at(half), 4),
        "randomisation": [
            {"blocks_randomised": s.blocks_randomised, "block": s.block, "spearman": _r(s.spearman, 4), "ssim": _r(s.ssim, 4)}
            for s in m.randomisation
        ],
        "class_sensitivity": None if m.class_sensitivity is None else {
            "other_class": m.class_sensitivity.other_class,
            "other_label": m.class_sensitivity.other_label,
            "spearman": _r(m.class_sensitivity.spearman, 4),
        },
        "seconds": round(m.seconds, 3),
    }


def cmd_trust(args):
    from explain.images import prepare
    from explain.trust import trust_report

    methods = list(CAM_METHODS) if args.methods.strip() == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in CAM_METHODS]
    if unknown or not methods:
        raise LensError(f"Unknown method '{unknown[0] if unknown else ''}'. Choose from: {', '.join(CAM_METHODS)}, or 'all'.")
    if not 2 <= args.steps <= 100:
        raise LensError("--steps must be between 2 and 100.")
    if len(args.images) > MAX_TRUST_IMAGES:
        raise LensError(f"At most {MAX_TRUST_IMAGES} images per run; split the list.")
    backbone = common.load(args)
    records, images, slots = common.read_images(args.images, {})
    for slot, image in zip(slots, images):
        try:
            report = trust_report(
                backbone, prepare(image, backbone.preprocess).tensor, args.target, methods, args.layer, args.steps, args.fill,
                road=not args.no_road, randomisation=not args.no_randomisation, class_sensitivity=not args.no_class_check,
                seed=args.seed, cam_options={"samples": args.samples},
            )
        except LensError as exc:
            if args.target is not None or args.layer is not None:
                raise  # the same mistake on every image
            records[slot] = {"file": records[slot]["file"], "error": str(exc)}
            continue
        records[slot].update({
            "class": report.target_label,
            "class_index": report.target_index,
            "prob": _r(report.target_prob),
            "methods": [method_record(m, report) for m in report.methods],
        })
    lines = []
    for r in records:
        if "error" in r:
            lines.append(f"{r['file']}: ERROR {r['error']}")
            continue
        lines.append(f"{r['file']}: {r['class']} ({r['class_index']}, p={r['prob'] * 100:.1f}%)")
        for m in r["methods"]:
            road = f"  ROAD {m['road']:.3f} (random {m['random_road']:.3f})" if m["road"] is not None else ""
            lines.append(
                f"  {m['method']:<22} deletion {m['deletion_auc']:.3f} (random {m['random_deletion_auc']:.3f})"
                f"  insertion {m['insertion_auc']:.3f} (random {m['random_insertion_auc']:.3f}){road}"
            )
    return per_image_outcome(records, lines)
