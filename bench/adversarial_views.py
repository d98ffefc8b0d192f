"""How the lab's attack holds in other pipelines, on a part of the ImageNet samples (the figures in the README).

    .venv/bin/python bench/adversarial_views.py holdout 50 '{"eps": 2}'      # photos 51-100, the lab's defaults
    .venv/bin/python bench/adversarial_views.py tune 16 '{"views": 0, "steps": 10}'

part: tune (photos 1-50), holdout (51-100) or all; then how many; then AttackSettings fields as JSON.
Target: the lab's default (tabby; golden retriever for a cat). One thread (BENCH_THREADS=2 for both cores). Prints one JSON line: success per
view family of explain.adversarial.views (mean share of views), the share of photos fooled in all 25 shifted
crops, mean steps and seconds per image (attack, then the view check), and the attack's CPU seconds per image (all
threads; steadier than wall time when other work shares the cores).
"""

import csv
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from explain.adversarial import AttackSettings, attack_images, default_target, robustness  # noqa: E402
from explain.classify import classify_images  # noqa: E402
from explain.images import decode_image, encode_png, read_image  # noqa: E402
from explain.models import load_backbone  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(int(__import__("os").environ.get("BENCH_THREADS", "1")))
folder = ROOT.parent / "shared" / "datasets" / "imagenet-samples"
rows = list(csv.DictReader(open(folder / "labels.csv")))
part = sys.argv[1]
rows = rows[:50] if part == "tune" else rows[50:] if part == "holdout" else rows
rows = rows[: int(sys.argv[2])]
kw = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
b = load_backbone("efficientnet_lite0")
imgs = [read_image(folder / r["file"]) for r in rows]
targets = [default_target(s[0].index) for s in classify_images(b, imgs, 1)]
t0, c0 = time.perf_counter(), time.process_time()
run = attack_images(b, imgs, AttackSettings(**kw), target=targets, check_views=False)
t_attack, c_attack = time.perf_counter() - t0, time.process_time() - c0
t1 = time.perf_counter()
rob = robustness(b, [decode_image(encode_png(r.adversarial)) for r in run], targets, True)
t_check = time.perf_counter() - t1
families = {k: round(float(np.mean([r.share()[k] for r in rob])), 4) for k in rob[0].views}
print(json.dumps({
    "part": part, "settings": kw, "n": len(imgs), "attack_s_per_img": round(t_attack / len(imgs), 3),
    "attack_cpu_s_per_img": round(c_attack / len(imgs), 3), "check_s_per_img": round(t_check / len(imgs), 3), "own_success": float(np.mean([r.success for r in run])), **families,
    "all25": float(np.mean([r.share()["shifts"] == 1.0 for r in rob])), "steps_mean": float(np.mean([r.steps_used for r in run])),
    "linf_max": max(r.linf for r in run),
}))
