"""Our Grad-CAM and Grad-CAM++ against pytorch-grad-cam (`pip install grad-cam`): same model, layer, targets.

For every photo of the sample set (labels.csv: file,class_index,class_name) both implementations
compute the map of the labelled class; we report the Pearson correlation of the two maps per image
and the time ratio ours / theirs (batches timed alternately, so machine load hits both alike).

    python bench/cam.py [--data ../shared/datasets/imagenet-samples] [--model efficientnet_lite0]
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

from explain.cam import compute_cam, default_layer  # noqa: E402
from explain.images import prepare, read_image  # noqa: E402
from explain.models import load_model  # noqa: E402


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    if a.std() == 0 and b.std() == 0:
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def reference_maps(cls, backbone, layer: str, x01: torch.Tensor, targets: list[int]) -> np.ndarray:
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = dict(backbone.model.named_modules())[layer]
    # created per batch and released at once, so its hooks never run during our timings
    with cls(backbone.model, [module]) as cam:
        return cam(backbone.normalize(x01.to(backbone.device)), [ClassifierOutputTarget(t) for t in targets])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT / "../shared/datasets/imagenet-samples"))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--layer", default=None, help="default: the backbone's Grad-CAM layer")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N photos (0 = all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench/results/cam.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus

    data = Path(args.data)
    with open(data / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if args.limit:
        rows = rows[: args.limit]
    backbone = load_model(args.model)
    layer = args.layer or default_layer(backbone)
    x = torch.cat([prepare(read_image(data / r["file"]), backbone.preprocess).tensor for r in rows])
    targets = [int(r["class_index"]) for r in rows]
    bs = max(1, args.batch_size)
    batches = [(s, min(len(rows), s + bs)) for s in range(0, len(rows), bs)]

    report: dict = {
        "model": args.model,
        "layer": layer,
        "images": len(rows),
        "batch_size": bs,
        "threads": args.threads,
        "device": str(backbone.device),
        "reference": "pytorch-grad-cam " + _version("grad-cam"),
        "methods": {},
    }
    for method, cls in (("gradcam", GradCAM), ("gradcampp", GradCAMPlusPlus)):
        # warm-up: first calls pay for allocator growth and lazy initialisation
        compute_cam(backbone, x[:bs], targets[:bs], method=method, layer=layer, batch_size=bs)
        reference_maps(cls, backbone, layer, x[:bs], targets[:bs])
        ours_t = ref_t = 0.0
        corr: list[float] = []
        for k, (s, e) in enumerate(batches):
            runs = {}
            order = ("ours", "ref") if k % 2 == 0 else ("ref", "ours")
            for who in order:
                t0 = time.perf_counter()
                if who == "ours":
                    runs[who] = compute_cam(backbone, x[s:e], targets[s:e], method=method, layer=layer, batch_size=bs).maps
                else:
                    runs[who] = reference_maps(cls, backbone, layer, x[s:e], targets[s:e])
                if backbone.device.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                if who == "ours":
                    ours_t += dt
                else:
                    ref_t += dt
            corr += [pearson(a, b) for a, b in zip(runs["ours"], runs["ref"])]
        worst = int(np.argmin(corr))
        report["methods"][method] = {
            "pearson_min": round(min(corr), 6),
            "pearson_mean": round(float(np.mean(corr)), 6),
            "worst_image": rows[worst]["file"],
            "images_below_0.99": sum(c < 0.99 for c in corr),
            "time_ours_s": round(ours_t, 3),
            "time_reference_s": round(ref_t, 3),
            "time_ratio": round(ours_t / ref_t, 3),
        }
    report["pass"] = all(
        m["pearson_min"] >= 0.99 and m["time_ratio"] <= 1.0 for m in report["methods"].values()
    )
    text = json.dumps(report, indent=2)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    main()
