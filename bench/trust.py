"""Can I trust the map? Every method's faithfulness and sanity scores on the ImageNet samples, averaged per method.

For each photo (labels.csv: file,class_index,class_name), the labelled class: deletion and insertion AUC
(blur fill, 16 steps), ROAD, the same for random maps, cascading randomisation (Spearman and SSIM after every
block) and class sensitivity, with the seconds each method took per image (all of it: map, curves, checks).
The photos run in a fixed shuffled order (any prefix is a sample of the set), results saved after each.
Score-CAM, Ablation-CAM, occlusion and integrated gradients cost hundreds of forward passes per map, and the
randomisation check makes ten maps more: they run on every --heavy-every-th photo, without the randomisation
check unless --heavy-sanity; SmoothGrad (16 noisy copies per map) on every --smoothgrad-every-th photo.
--until HH:MM (UTC) starts no new photo after that time, so a run fits a time slot. --resume keeps the photos
already in --out (same model, fill, steps, --heavy-every and --smoothgrad-every, so every photo keeps its place in
the order and its methods) and computes only the rest; --heavy-last runs the light methods on every photo first and
the heavy ones afterwards, on the heavy photos that lack them, while time is left.

    python bench/trust.py [--images 100] [--until 13:50] [--methods all] [--threads 1]
    python bench/trust.py --resume --heavy-last --heavy-every 6 --until 16:55   # go on from bench/results/trust.json
    python bench/trust.py --road-speed 5     # ROAD: the exact (factorised) against the fast imputation
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from datetime import datetime, timezone
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
MEDIUM = ("smoothgrad",)


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


def road_speed(backbone, data: Path, rows: list[dict], methods: list[str], threads: int, out: Path) -> None:
    """Per photo: ROAD's imputations solved exactly (sparse LU, the old way) and fast (multigrid CG), for the
    random map and each method's map: seconds (process CPU time, one thread) and the largest differences."""
    from explain.cam import compute_cam
    from explain.trust.faithfulness import ROAD_FRACTIONS, linear_impute, pixel_order, random_map, road_curve

    records = []
    for row in rows:
        x = prepare(read_image(data / row["file"]), backbone.preprocess).tensor
        target = int(row["class_index"])
        maps = {"random": random_map(tuple(x.shape[2:]))}
        maps.update({m: compute_cam(backbone, x, target, method=m).maps[0] for m in methods})
        image = x[0].double().numpy()
        h, w = image.shape[1:]
        for name, cam_map in maps.items():
            order = pixel_order(cam_map)
            solve = {"exact": 0.0, "fast": 0.0}
            diff = 0.0
            start = None
            for f in ROAD_FRACTIONS:
                removed = np.zeros(h * w, bool)
                removed[order[: round(f * h * w)]] = True
                removed = removed.reshape(h, w)
                t0 = time.process_time()
                exact = linear_impute(image, removed, 0.0, np.random.default_rng(0), exact=True)
                solve["exact"] += time.process_time() - t0
                t0 = time.process_time()
                fast = linear_impute(image, removed, 0.0, np.random.default_rng(0), start)
                solve["fast"] += time.process_time() - t0
                start = fast
                diff = max(diff, float(np.abs(exact - fast).max()))
            curve = {}
            for kind in ("exact", "fast"):
                t0 = time.process_time()
                curve[kind] = road_curve(backbone, x, target, cam_map, exact=kind == "exact")
                curve[kind + "_s"] = time.process_time() - t0
            records.append({
                "file": row["file"], "map": name, "impute_exact_s": round(solve["exact"], 3), "impute_fast_s": round(solve["fast"], 3),
                "impute_max_abs_diff": diff, "road_curve_exact_s": round(curve["exact_s"], 3), "road_curve_fast_s": round(curve["fast_s"], 3),
                "road_max_prob_diff": float(np.max(np.abs(np.subtract(curve["exact"].probs, curve["fast"].probs)))),
                "road_exact": round(float(np.mean(curve["exact"].probs)), 6), "road_fast": round(float(np.mean(curve["fast"].probs)), 6),
            })
            print(json.dumps(records[-1]), file=sys.stderr, flush=True)
    total = {k: round(sum(r[k] for r in records), 2) for k in ("impute_exact_s", "impute_fast_s", "road_curve_exact_s", "road_curve_fast_s")}
    result = {
        "model": backbone.name, "threads": threads, "clock": "process CPU seconds", "load_before": os.getloadavg(),
        "photos": len(rows), "maps_per_photo": 1 + len(methods), "total": total,
        "impute_speedup": round(total["impute_exact_s"] / total["impute_fast_s"], 2),
        "road_curve_speedup": round(total["road_curve_exact_s"] / total["road_curve_fast_s"], 2),
        "impute_max_abs_diff": max(r["impute_max_abs_diff"] for r in records),
        "road_max_prob_diff": max(r["road_max_prob_diff"] for r in records), "records": records,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "records"}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "../shared/datasets/imagenet-samples"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--methods", default="all")
    parser.add_argument("--images", type=int, default=100, help="photos at most (in a fixed shuffled order)")
    parser.add_argument("--heavy-every", type=int, default=8, help=f"run {', '.join(HEAVY)} on every n-th photo (0: never)")
    parser.add_argument("--smoothgrad-every", type=int, default=2, help="run SmoothGrad on every n-th photo")
    parser.add_argument("--heavy-sanity", action="store_true", help="also run the randomisation check for the heavy methods")
    parser.add_argument("--until", default=None, help="HH:MM UTC: start no new photo after this")
    parser.add_argument("--resume", action="store_true", help="keep the photos already in --out, compute only the rest")
    parser.add_argument("--heavy-last", action="store_true", help="light methods on every photo first, then the heavy ones")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--road-speed", type=int, default=0, help="only time ROAD's imputation, exact against fast, on n photos")
    parser.add_argument("--out", default=str(ROOT / "bench/results/trust.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = list(CAM_METHODS) if args.methods == "all" else args.methods.split(",")
    data = Path(args.data)
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    rows = [rows[k] for k in np.random.default_rng(0).permutation(len(rows))]
    backbone = load_model(args.model)
    if args.road_speed:
        road_methods = [m for m in methods if m not in HEAVY] if args.methods != "all" else ["gradcam", "saliency"]
        road_speed(backbone, data, rows[: args.road_speed], road_methods, args.threads, ROOT / "bench/results/road.json")
        return
    deadline = None
    if args.until:
        now = datetime.now(timezone.utc)
        hour, minute = (int(v) for v in args.until.split(":"))
        deadline = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    picked = rows[: args.images]
    done: dict[str, dict] = {}
    runs: list[dict] = []
    earlier_seconds = 0.0
    if args.resume and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        same = {"model": args.model, "fill": "blur", "steps": 16, "heavy_every": args.heavy_every,
                "smoothgrad_every": args.smoothgrad_every, "heavy_sanity": args.heavy_sanity}
        differ = {k: (old.get(k), v) for k, v in same.items() if old.get(k) != v}
        if differ:
            sys.exit(f"--resume: {args.out} was made with other settings (old, new): {differ}")
        done = {r["file"]: r for r in old["records"]}
        earlier_seconds = float(old.get("seconds", 0.0))
        runs = old.get("runs") or [{"argv": None, "photos_added": len(done), "seconds": earlier_seconds,
                                    "load_average_end": old.get("load_average")}]
        print(f"resuming: {len(done)} photos already in {args.out}", file=sys.stderr, flush=True)
    by_file: dict[str, dict] = {}
    run = {"argv": sys.argv[1:], "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "photos_added": 0, "heavy_added": 0, "seconds": 0.0, "load_average_end": None}
    started = time.perf_counter()

    def ordered() -> list[dict]:
        return [by_file[r["file"]] for r in picked if r["file"] in by_file]

    def save() -> dict:
        records = ordered()
        summary = summarise(records)
        run["seconds"] = round(time.perf_counter() - started, 1)
        run["load_average_end"] = os.getloadavg()
        result = {
            "model": args.model, "device": str(backbone.device), "threads": args.threads, "images": [r["file"] for r in records],
            "fill": "blur", "steps": 16, "heavy_methods": list(HEAVY), "heavy_every": args.heavy_every,
            "smoothgrad_every": args.smoothgrad_every, "heavy_sanity": args.heavy_sanity,
            "seconds": round(earlier_seconds + run["seconds"], 1), "load_average": os.getloadavg(),
            "runs": runs + [run], "summary": summary, "records": records,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        Path(args.out).with_suffix(".md").write_text(markdown(summary) + "\n")
        return summary

    def out_of_time(k: int) -> bool:
        if deadline is not None and datetime.now(timezone.utc) >= deadline:
            print(f"stopped at {args.until} UTC after {k} photos", file=sys.stderr, flush=True)
            return True
        return False

    def heavy_due(k: int) -> list[str]:
        return [m for m in methods if m in HEAVY] if args.heavy_every and k % args.heavy_every == 0 else []

    def add_heavy(k: int, row: dict, x: torch.Tensor) -> None:
        have = {m["method"] for m in by_file[row["file"]]["methods"]}
        heavy = [m for m in heavy_due(k) if m not in have]
        if heavy:  # the randomisation check would make ten more maps of hundreds of passes each
            slow = trust_report(backbone, x, int(row["class_index"]), heavy, randomisation=args.heavy_sanity)
            record = by_file[row["file"]]
            record["methods"] += [method_record(m, slow) for m in slow.methods]
            if record["class"] is None:
                record.update({"class": slow.target_label, "prob": round(slow.target_prob, 6)})
            run["heavy_added"] += 1

    stopped = False
    for k, row in enumerate(picked):
        if row["file"] in done:
            by_file[row["file"]] = done[row["file"]]
            continue
        if stopped or out_of_time(k):
            stopped = True
            continue
        x = prepare(read_image(data / row["file"]), backbone.preprocess).tensor
        light = [m for m in methods if m not in HEAVY and (m not in MEDIUM or k % max(1, args.smoothgrad_every) == 0)]
        if not light and not heavy_due(k):
            continue  # only heavy methods asked for (--methods), and this photo is not one of theirs
        record = {"file": row["file"], "class": None, "prob": None, "methods": []}
        if light:
            report = trust_report(backbone, x, int(row["class_index"]), light)
            record.update({"class": report.target_label, "prob": round(report.target_prob, 6),
                           "methods": [method_record(m, report) for m in report.methods]})
        by_file[row["file"]] = record
        run["photos_added"] += 1
        if not args.heavy_last:
            add_heavy(k, row, x)
        save()
        print(f"{k + 1} {row['file']}: {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
    if args.heavy_last and not stopped:
        for k, row in enumerate(picked):
            if row["file"] not in by_file or not heavy_due(k):
                continue
            have = {m["method"] for m in by_file[row["file"]]["methods"]}
            if all(m in have for m in heavy_due(k)):
                continue
            if out_of_time(k):
                break
            add_heavy(k, row, prepare(read_image(data / row["file"]), backbone.preprocess).tensor)
            save()
            print(f"heavy {k + 1} {row['file']}: {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)
    print(markdown(save()))


if __name__ == "__main__":
    main()
