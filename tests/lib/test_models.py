import pickle
import urllib.error
import urllib.request

import pytest
import torch

from explain.classify import classify_images
from explain.errors import LensError
from explain.models import (
    REGISTRY,
    STATUSES,
    load_backbone,
    load_model,
    resolve_class,
    summarize,
    weight_status,
)

from ..conftest import CAT_CLASSES

EXPECTED = {
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "vgg16", "vgg19", "resnet18", "resnet50",
    "mobilenet_v2", "mobilenet_v3_large", "inception_v3", "efficientnet_b0", "alexnet", "googlenet", "xception",
}


def test_registry_has_every_entry_with_a_status():
    assert set(REGISTRY) == EXPECTED
    for name in REGISTRY:
        assert weight_status(name) in STATUSES
    for n in (0, 1, 2):
        assert weight_status(f"efficientnet_lite{n}") == "offline"


def test_default_backbone_calls_chelsea_a_cat(lite0, chelsea):
    assert lite0.source == "offline"
    top = classify_images(lite0, [chelsea], k=5)[0]
    assert top[0].index in CAT_CLASSES
    assert sum(s.prob for s in top if s.index in CAT_CLASSES) > 0.8
    assert len(lite0.categories) == 1000 and lite0.categories[281] == "tabby"


@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_other_offline_lites_also_see_a_cat(name, chelsea):
    backbone = load_backbone(name, device="cpu")
    assert classify_images(backbone, [chelsea], k=1)[0][0].index in CAT_CLASSES


def test_weights_file_round_trip(lite0, chelsea, tmp_path):
    path = tmp_path / "lite0.pth"
    torch.save(lite0.model.state_dict(), path)
    loaded = load_model(str(path), device="cpu")
    assert loaded.base == "efficientnet_lite0" and loaded.source == "file"
    a = classify_images(lite0, [chelsea], k=3)[0]
    b = classify_images(loaded, [chelsea], k=3)[0]
    assert [s.index for s in a] == [s.index for s in b]


def test_weights_for_another_architecture_say_how_many_keys_are_wrong(tmp_path):
    from explain.models import build_architecture

    path = tmp_path / "alexnet.pth"
    torch.save(build_architecture("alexnet").state_dict(), path)
    with pytest.raises(LensError, match=r"\d+ missing .*\d+ unexpected"):
        load_backbone("efficientnet_lite0", weights_file=path, device="cpu")


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/cnn_lens_pwned_by_test",))


def test_pickle_with_code_is_refused_and_not_run(tmp_path):
    import os

    marker = "/tmp/cnn_lens_pwned_by_test"
    if os.path.exists(marker):
        os.remove(marker)
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"w": _Evil()}, fh)
    with pytest.raises(LensError, match="evil.pth.*never runs code"):
        load_model(str(path))
    assert not os.path.exists(marker)


def test_truncated_weights_file_gives_clear_error(lite0, tmp_path):
    path = tmp_path / "cut.pth"
    torch.save(lite0.model.state_dict(), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(LensError, match="Could not read weights file"):
        load_model(str(path))


def test_missing_weights_say_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)  # hermetic on a machine with internet too
    monkeypatch.setattr("explain.models.files._download_failures", {})
    assert weight_status("resnet18") == "download"
    with pytest.raises(LensError) as err:
        load_backbone("resnet18", device="cpu")
    msg = str(err.value)
    assert "offline backbone" in msg and "resnet18-f37072fd.pth" in msg and "weights file" in msg


def test_cached_status_when_the_file_is_in_the_hub_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "alexnet-owt-7be5be79.pth").write_bytes(b"x")
    assert weight_status("alexnet") == "cached"


def test_unknown_backbone_and_class_names():
    with pytest.raises(LensError, match="Unknown backbone"):
        load_model("resnet1000")
    cats = ["tabby", "tiger cat", "Egyptian cat"]
    assert resolve_class(cats, "tiger") == 1
    assert resolve_class(cats, "2") == 2
    with pytest.raises(LensError, match="several"):
        resolve_class(cats, "cat")
    with pytest.raises(LensError, match="out of range"):
        resolve_class(cats, 7)
    with pytest.raises(LensError, match="Unknown class"):
        resolve_class(cats, "zebra")


def test_summary_counts_trainable_and_frozen(lite0):
    import copy

    backbone = copy.deepcopy(lite0)
    full = summarize(backbone)
    assert full.total_params == sum(p.numel() for p in backbone.model.parameters())
    assert sum(r.params for r in full.rows) == full.total_params
    assert full.frozen_params == 0
    for p in backbone.model.blocks.parameters():
        p.requires_grad_(False)
    part = summarize(backbone)
    frozen = sum(p.numel() for p in backbone.model.blocks.parameters())
    assert part.frozen_params == frozen and part.trainable_params == full.total_params - frozen
    assert any(r.trainable == "no" for r in part.rows) and "Non-trainable params" in part.as_text()
    first = full.rows[0]
    assert first.name == "conv_stem" and first.output_shape == (1, 32, 112, 112)
