"""Feature-map timings for one backbone: record every layer once, then switch layers.

Prints JSON and writes bench/results/featuremaps.json. Two switch timings:
- library: the work a layer switch does (grid of the strongest channels, statistics, enlarged
  channel and overlay) on the already recorded maps;
- page: a whole Streamlit rerun of the Feature maps page after choosing another layer
  (streamlit.testing AppTest, server side, no browser), recording re-used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.timing import ms_summary  # noqa: E402
from explain.featuremaps import (  # noqa: E402
    channel_grid,
    channel_image,
    channel_stats,
    overlay_channel,
    record_image,
    top_channels,
)
from explain.images import prepare, sample_image  # noqa: E402
from explain.models import load_backbone  # noqa: E402


def library_switch(backbone, recording, cropped, layer: str) -> None:
    fmap = recording.maps[layer]
    channels = top_channels(fmap, min(64, fmap.shape[0]))
    channel_grid(fmap, channels)
    channel_stats(fmap)
    side = cropped.shape[0]
    channel_image(fmap, channels[0], (side, side))
    overlay_channel(cropped, fmap, channels[0])


def page_switches(rounds: int) -> list[float]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.switch_page("lessons/2_Feature_maps.py").run()
    options = at.selectbox(key="fm_layer").options
    times = []
    for _ in range(rounds):
        for option in options:
            start = time.perf_counter()
            at.selectbox(key="fm_layer").set_value(option).run()
            times.append((time.perf_counter() - start) * 1000)
            if at.exception:
                raise RuntimeError(at.exception[0].message)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--image", default="chelsea")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-page", action="store_true", help="skip the AppTest page timing")
    args = parser.parse_args()

    backbone = load_backbone(args.model)
    prepared = prepare(sample_image(args.image), backbone.preprocess)
    record_image(backbone, prepared.tensor)  # warm-up
    record_ms = []
    for _ in range(5):
        start = time.perf_counter()
        recording = record_image(backbone, prepared.tensor)
        record_ms.append((time.perf_counter() - start) * 1000)
    main_layers = [li.name for li in recording.layers if li.main]
    lib_ms = []
    for _ in range(args.rounds):
        for layer in main_layers:
            start = time.perf_counter()
            library_switch(backbone, recording, prepared.cropped, layer)
            lib_ms.append((time.perf_counter() - start) * 1000)
    result = {
        "bench": "featuremaps",
        "model": args.model,
        "device": str(backbone.device),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "layers_recorded": len(recording.layers),
        "main_layers": len(main_layers),
        "recorded_megabytes": round(sum(m.numel() * 4 for m in recording.maps.values()) / 2**20, 1),
        "record_all_layers": ms_summary(record_ms),
        "layer_switch_library": ms_summary(lib_ms),
    }
    if not args.no_page:
        result["layer_switch_page"] = ms_summary(page_switches(args.rounds))
    out = ROOT / "bench" / "results" / "featuremaps.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
