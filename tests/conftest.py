import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
os.environ.setdefault("CNN_LENS_WARMUP", "0")  # in-process page tests: no background warm-up (explain.ui.warmup); the live app has it
# the channel microscope's shared index cache: one per test run, never the user's ~/.cache (built once, reused by the pages)
INDEX_CACHE = None if "CNN_LENS_INDEX_DIR" in os.environ else tempfile.mkdtemp(prefix="cnn-lens-index-")
if INDEX_CACHE:
    os.environ["CNN_LENS_INDEX_DIR"] = INDEX_CACHE
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
GOLDFISH = 1
GOLDEN_RETRIEVER = 207


@pytest.fixture(scope="session", autouse=True)
def _remove_the_index_cache():
    yield
    if INDEX_CACHE:
        shutil.rmtree(INDEX_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def lite0():
    from explain.models import load_backbone

    return load_backbone("efficientnet_lite0", device="cpu")


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    from explain.images import sample_image

    return sample_image("chelsea")


@pytest.fixture(scope="session")
def chelsea_png(tmp_path_factory, chelsea) -> Path:
    from explain.images import save_png

    return save_png(chelsea, tmp_path_factory.mktemp("img") / "chelsea.png")
