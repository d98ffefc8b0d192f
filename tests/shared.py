"""Small builders that tests in more than one folder (lib, cli, pages) use."""

from __future__ import annotations

import io
import zipfile

from explain import transfer as T
from explain.images import encode_png


def demo_pngs(name: str = "textures", per_class: int = 5) -> dict[str, list[bytes]]:
    """A built-in demo set as PNG files per class, as a user would upload or put in folders."""
    ds = T.demo_dataset(name, per_class=per_class, size=64)
    out: dict[str, list[bytes]] = {c: [] for c in ds.classes}
    for img, label in zip(ds.images, ds.labels):
        out[ds.classes[label]].append(encode_png(img))
    return out


def check_ideal(**kw):
    """Ideal-image settings, checked as the library checks them (LensError past a cap)."""
    from explain.synthesis import IdealSettings, check_settings

    check_settings(IdealSettings(**kw))


def check_attack(**kw):
    """Attack settings, checked as the library checks them."""
    from explain.adversarial import AttackSettings

    AttackSettings(**kw).checked()


def check_train(**kw):
    """A training configuration, checked as the library checks it."""
    from explain.transfer import TrainConfig

    TrainConfig(**kw).checked()


def zip_of(files: dict[str, bytes | str]) -> bytes:
    """A zip holding each name with its content, as a user would upload it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()
