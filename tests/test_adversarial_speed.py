"""The attack's faster twin of the network (explain.adversarial.fast): same logits and gradients, app's network untouched."""

import torch
from torch import nn

from explain.adversarial.fast import attack_model, fold_batchnorm
from explain.images import prepare


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bns(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_folded_lite0_gives_the_same_logits_and_input_gradients(lite0, chelsea):
    before = _state(lite0.model)
    twin = attack_model(lite0.model, lite0.preprocess.input_size)
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
    assert attack_model(dishonest, 9) is dishonest
    assert attack_model(dishonest, 9) is dishonest  # cached as "no twin", still the original


def test_twin_is_cached_and_rebuilt_when_the_weights_change():
    block = _block()
    twin = attack_model(block, 9)
    assert twin is not block and attack_model(block, 9) is twin
    with torch.no_grad():
        block.conv.weight.mul_(2)  # as an optimiser step or load_state_dict would, in place
    fresh = attack_model(block, 9)
    assert fresh is not twin
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        assert torch.allclose(fresh(x), block(x), atol=1e-5)
        assert not torch.allclose(twin(x), block(x), atol=1e-3)


def test_a_model_in_training_mode_is_used_as_it_is():
    block = _block().train()
    assert attack_model(block, 9) is block
