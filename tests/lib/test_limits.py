"""The caps of explain/limits.py: the library enforces each one with a message naming it."""

import io

import pytest
import torch
from PIL import Image

from explain import limits as L
from explain.errors import LensError

from ..shared import check_attack, check_ideal, check_train


@pytest.mark.parametrize(
    "call, allowed, refused, shown",
    [
        (check_ideal, {"steps": L.MAX_IDEAL_STEPS}, {"steps": L.MAX_IDEAL_STEPS + 1}, str(L.MAX_IDEAL_STEPS)),
        (check_ideal, {"size": L.MAX_IDEAL_SIZE}, {"size": L.MAX_IDEAL_SIZE + 1}, str(L.MAX_IDEAL_SIZE)),
        (check_ideal, {"size": L.MIN_IDEAL_SIZE}, {"size": L.MIN_IDEAL_SIZE - 1}, str(L.MIN_IDEAL_SIZE)),
        (check_ideal, {"batch": L.MAX_IDEAL_BATCH}, {"batch": L.MAX_IDEAL_BATCH + 1}, str(L.MAX_IDEAL_BATCH)),
        (check_attack, {"steps": L.MAX_ATTACK_STEPS}, {"steps": L.MAX_ATTACK_STEPS + 1}, str(L.MAX_ATTACK_STEPS)),
        (check_train, {"epochs": L.MAX_EPOCHS}, {"epochs": L.MAX_EPOCHS + 1}, str(L.MAX_EPOCHS)),
        (check_train, {"strategy": "finetune", "head_epochs": L.MAX_EPOCHS}, {"strategy": "finetune", "head_epochs": L.MAX_EPOCHS + 1}, str(L.MAX_EPOCHS)),
    ],
    ids=["ideal-steps", "ideal-size", "ideal-min-size", "ideal-batch", "attack-steps", "epochs", "head-epochs"],
)
def test_each_cap_is_enforced_at_its_value(call, allowed, refused, shown):
    call(**allowed)  # the cap itself is allowed
    with pytest.raises(LensError, match=shown):
        call(**refused)


def test_smoothgrad_samples_cap(lite0):
    from explain.cam import compute_cam

    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(LensError, match=str(L.MAX_SMOOTHGRAD_SAMPLES)):
        compute_cam(lite0, x, targets=1, method="smoothgrad", samples=L.MAX_SMOOTHGRAD_SAMPLES + 1)
    assert compute_cam(lite0, x, targets=1, method="smoothgrad", samples=1).maps.shape == (1, 32, 32)


def test_image_byte_cap_before_decoding():
    from explain.images import decode_image

    with pytest.raises(LensError, match=f"the limit is {L.MAX_IMAGE_MB} MB"):
        decode_image(b"\x89PNG" + bytes(L.MAX_IMAGE_BYTES), name="huge.png")


def test_dataset_image_cap_before_decoding(monkeypatch):
    from explain import transfer as T

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, format="PNG")
    files = {cls: [(f"{i}.png", buf.getvalue()) for i in range(6)] for cls in ("a", "b")}
    assert len(T.dataset_from_uploads(files)) == 12
    monkeypatch.setattr(T.datasets, "MAX_DATASET_IMAGES", 11)
    with pytest.raises(LensError, match="holds 12 images; the limit is 11"):
        T.dataset_from_uploads(files)
