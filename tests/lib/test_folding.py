"""The faster twin of the network (explain.folding) that the attack and the pixel maps run: same logits and gradients, app's network untouched."""

import numpy as np
import pytest
import torch
from torch import nn

from explain.folding import fold_batchnorm, folded_twin
from explain.images import prepare


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bns(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folded_lite0_gives_the_same_logits_and_input_gradients(lite0, chelsea):
    before = _state(lite0.model)
    twin = folded_twin(lite0.model, lite0.preprocess.input_size)
    assert twin is not lite0.model and _bns(twin) == 0 and _bns(lite0.model) == 49
    assert not any(p.requires_grad for p in twin.parameters())
    # the app's network is exactly as it was
    after = lite0.model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)

    photo = prepare(chelsea, lite0.preprocess).tensor
    x = torch.cat([photo, torch.rand(3, *photo.shape[1:], generator=torch.Generator().manual_seed(1))])
    with torch.no_grad():
        ref, got = lite0.model(lite0.normalize(x)), twin(lite0.normalize(x))
    assert (ref - got).abs().max() < 1e-4
    assert torch.equal(ref.argmax(1), got.argmax(1))

    grads = []
    for model in (lite0.model, twin):
        xx = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(model(lite0.normalize(xx))[:, 281].sum(), xx)
        grads.append(g.flatten(1))
    cosine = nn.functional.cosine_similarity(grads[0], grads[1], dim=1)
    assert cosine.min() > 0.9999
    assert (grads[0].sign() == grads[1].sign()).float().mean() > 0.99


class _Block(nn.Module):
    def __init__(self, honest: bool = True):
        super().__init__()
        self.honest = honest
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.other = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        # dishonest: the BatchNorm registered after `conv` normalises another conv's output
        return self.bn(self.conv(x) if self.honest else self.other(x)).relu().mean((2, 3))


def _block(honest: bool = True) -> nn.Module:
    torch.manual_seed(0)
    block = _Block(honest)
    with torch.no_grad():  # statistics far from the defaults, so a wrong fold shows in the output
        block.bn.running_mean.uniform_(-1, 1)
        block.bn.running_var.uniform_(0.5, 2)
        block.bn.weight.uniform_(0.5, 2)
        block.bn.bias.uniform_(-1, 1)
    return block.eval()


def test_fold_is_exact_on_a_small_block_with_conv_bias():
    block = _block()
    folded = _block()
    assert fold_batchnorm(folded) == 1 and isinstance(folded.bn, nn.Identity)
    x = torch.randn(4, 3, 9, 9)
    with torch.no_grad():
        assert torch.allclose(block(x), folded(x), atol=1e-5)


def test_a_network_that_calls_its_layers_otherwise_keeps_the_original():
    dishonest = _block(honest=False)
    assert folded_twin(dishonest, 9) is dishonest
    assert folded_twin(dishonest, 9) is dishonest  # cached as "no twin", still the original


def test_twin_is_cached_and_rebuilt_when_the_weights_change():
    block = _block()
    twin = folded_twin(block, 9)
    assert twin is not block and folded_twin(block, 9) is twin
    with torch.no_grad():
        block.conv.weight.mul_(2)  # as an optimiser step or load_state_dict would, in place
    fresh = folded_twin(block, 9)
    assert fresh is not twin
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert torch.allclose(fresh(x), block(x), atol=1e-5)
        assert not torch.allclose(twin(x), block(x), atol=1e-3)


def test_a_model_in_training_mode_is_used_as_it_is():
    block = _block().train()
    assert folded_twin(block, 9) is block


def test_pixel_maps_run_on_the_twin_and_equal_the_original_networks(lite0, chelsea, monkeypatch):
    """Saliency and occlusion are computed on the folded twin (faster) and still are the original network's maps."""
    from explain.cam import compute_cam, pixels

    x = prepare(chelsea, lite0.preprocess).tensor
    ran: list[nn.Module] = []
    real = pixels.folded_twin
    monkeypatch.setattr(pixels, "folded_twin", lambda model, size: ran.append(real(model, size)) or ran[-1])
    saliency = compute_cam(lite0, x, targets=281, method="saliency")
    assert ran and all(net is not lite0.model and _bns(net) == 0 for net in ran)

    xx = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(lite0.model(lite0.normalize(xx))[0, 281], xx)
    reference = g.abs().amax(1)[0].numpy()
    r = np.corrcoef(saliency.raw[0].ravel(), reference.ravel())[0, 1]
    assert r > 0.9999
    # float rounding moves a few units across ReLU6's 0 or 6: a few pixels differ by a little, none by much
    diff = np.abs(saliency.raw[0] - reference)
    assert np.quantile(diff, 0.99) < 1e-3 * reference.max() and diff.max() < 0.05 * reference.max()
    with torch.no_grad():
        prob = lite0.model(lite0.normalize(x)).softmax(1)[0, 281]
    assert saliency.target_prob[0] == pytest.approx(float(prob), abs=1e-4)
