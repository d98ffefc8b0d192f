"""Can I trust the map? Every method's faithfulness and sanity scores on the ImageNet samples, averaged per method.

For each photo (labels.csv: file,class_index,class_name), the labelled class: deletion and insertion AUC
(blur fill, 16 steps), ROAD, the same for random maps, cascading randomisation (Spearman and SSIM after every
block) and class sensitivity, with the seconds each method took per image (all of it: map, curves, checks).
Score-CAM, Ablation-CAM, occlusion and integrated gradients cost hundreds of forward passes per map, and the
randomisation check makes ten maps more: on a CPU they run on --heavy-images photos only, and without the
randomisation check unless --heavy-sanity.

    python bench/trust.py [--images 5] [--heavy-images 2] [--methods all]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explain.cam import CAM_METHODS  # noqa: E402
from explain.cli.trust import method_record  # noqa: E402
from explain.images import prepare, read_image  # noqa: E402
from explain.models import load_model  # noqa: E402
from explain.trust import trust_report  # noqa: E402

HEAVY = ("scorecam", "ablationcam", "occlusion", "integrated_gradients")


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(float(np.mean(values)), 4) if values else None


def summarise(records: list[dict]) -> dict:
    """Per method: the mean of every score over the images it ran on."""
    out: dict = {}
    for method in CAM_METHODS:
        rows = [m for r in records for m in r["methods"] if m["method"] == method]
        if not rows:
            continue
        out[method] = {
            "images": len(rows),
            "deletion_auc": _mean(m["deletion_auc"] for m in rows),
            "random_deletion_auc": _mean(m["random_deletion_auc"] for m in rows),
            "inverted_deletion_auc": _mean(m["inverted_deletion_auc"] for m in rows),
            "insertion_auc": _mean(m["insertion_auc"] for m in rows),
            "random_insertion_auc": _mean(m["random_insertion_auc"] for m in rows),
            "road": _mean(m["road"] for m in rows),
            "random_road": _mean(m["random_road"] for m in rows),
            "deletion_beats_random": sum(m["deletion_auc"] < m["random_deletion_auc"] for m in rows),
            "spearman_after_head": _mean(m["randomisation"][0]["spearman"] for m in rows if m["randomisation"]),
            "spearman_after_all": _mean(m["randomisation"][-1]["spearman"] for m in rows if m["randomisation"]),
            "ssim_after_all": _mean(m["randomisation"][-1]["ssim"] for m in rows if m["randomisation"]),
            "class_spearman": _mean(m["class_sensitivity"]["spearman"] for m in rows if m["class_sensitivity"]),
            "seconds_per_image": _mean(m["seconds"] for m in rows),
        }
    return out


def markdown(summary: dict) -> str:
    def f(v):
        return "–" if v is None else f"{v:.3f}"

    lines = [
        "| method | images | deletion AUC ↓ (random) | beats random | insertion AUC ↑ (random) | ROAD ↓ (random) "
        "| randomised: ρ after head / all blocks, SSIM | other class ρ | s / image |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for method, s in summary.items():
        lines.append(
            f"| {CAM_METHODS[method]} | {s['images']} | {f(s['deletion_auc'])} ({f(s['random_deletion_auc'])}) "
            f"| {s['deletion_beats_random']}/{s['images']} | {f(s['insertion_auc'])} ({f(s['random_insertion_auc'])}) "
            f"| {f(s['road'])} ({f(s['random_road'])}) | {f(s['spearman_after_head'])} / {f(s['spearman_after_all'])}, "
            f"{f(s['ssim_after_all'])} | {f(s['class_spearman'])} | {s['seconds_per_image']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "../shared/datasets/imagenet-samples"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--images", type=int, default=5, help="photos, spread evenly over the set")
    parser.add_argument("--heavy-images", type=int, default=2, help=f"photos for {', '.join(HEAVY)}")
    parser.add_argument("--heavy-sanity", action="store_true", help="also run the randomisation check for the heavy methods")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench/results/trust.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = list(CAM_METHODS) if args.methods == "all" else args.methods.split(",")
    data = Path(args.data)
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    picked = [rows[int(k)] for k in np.linspace(0, len(rows) - 1, max(1, args.images)).round()]
    backbone = load_model(args.model)
    records = []
    started = time.perf_counter()

    def save() -> dict:
        summary = summarise(records)
        result = {
            "model": args.model, "device": str(backbone.device), "threads": args.threads, "images": [r["file"] for r in records],
            "fill": "blur", "steps": 16, "heavy_methods": list(HEAVY), "heavy_sanity": args.heavy_sanity,
            "seconds": round(time.perf_counter() - started, 1), "summary": summary, "records": records,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        Path(args.out).with_suffix(".md").write_text(markdown(summary) + "\n")
        return summary

    # the light methods on every photo first (saved after each), then the heavy ones on the first photos
    inputs = [prepare(read_image(data / row["file"]), backbone.preprocess).tensor for row in picked]
    for row, x in zip(picked, inputs):
        report = trust_report(backbone, x, int(row["class_index"]), [m for m in methods if m not in HEAVY])
        records.append({"file": row["file"], "class": report.target_label, "prob": round(report.target_prob, 6),
                        "methods": [method_record(m, report) for m in report.methods]})
        save()
        print(f"{row['file']}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    heavy = [m for m in methods if m in HEAVY]
    for k, (row, x) in enumerate(zip(picked[: args.heavy_images], inputs)):
        for method in heavy:  # the randomisation check would make ten more maps of hundreds of passes each
            slow = trust_report(backbone, x, int(row["class_index"]), [method], randomisation=args.heavy_sanity)
            records[k]["methods"] += [method_record(m, slow) for m in slow.methods]
            save()
            print(f"{row['file']} {method}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    print(markdown(save()))


if __name__ == "__main__":
    main()
