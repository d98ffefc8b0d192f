"""The attack's twin (explain.fusing) and the same-padding rewrite (explain.folding.SamePadConv): same logits, same leaky gradients."""

import copy
import threading

import pytest
import torch
from torch import nn

import explain.fusing as fusing
from explain.adversarial.leaky import leaky_relus
from explain.folding import SamePadConv, folded_twin, replace_same_convs
from explain.fusing import ConvAct, fuse_activations, fused_twin
from explain.images import prepare


def _input_grad(model: nn.Module, x: torch.Tensor, leak: float = 0.0, goal: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    with leaky_relus(model, leak):
        out = model(x)
    (grad,) = torch.autograd.grad(out[:, goal].sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize("size", [16, 17])
@pytest.mark.parametrize("kernel,stride,groups", [(3, 2, 8), (5, 2, 8), (3, 1, 8), (3, 2, 1), (4, 2, 1)])
def test_same_pad_conv_is_timm_conv2dsame(size, kernel, stride, groups):
    from timm.layers import Conv2dSame

    torch.manual_seed(0)
    conv = Conv2dSame(8, 8, kernel, stride=stride, groups=groups, bias=True).eval()
    rewritten = SamePadConv(conv)
    x = torch.randn(3, 8, size, size)
    ref_out, ref_grad = _input_grad(conv, x)
    out, grad = _input_grad(rewritten, x)
    assert out.shape == ref_out.shape
    assert torch.allclose(out, ref_out, atol=1e-5)
    assert torch.allclose(grad, ref_grad, atol=1e-5)


def test_the_folded_twin_of_lite0_has_no_padded_copies_and_the_same_logits_at_odd_sizes(lite0):
    twin = folded_twin(lite0.model, lite0.preprocess.input_size)
    assert sum(isinstance(m, SamePadConv) for m in twin.modules()) == 5  # the stem and the four stride-2 depthwise convs
    assert not any(type(m).__name__ == "Conv2dSame" for m in twin.modules())
    assert any(type(m).__name__ == "Conv2dSame" for m in lite0.model.modules())  # the app's network is untouched
    x = torch.rand(2, 3, 225, 231, generator=torch.Generator().manual_seed(0))  # odd sizes take the symmetric pads
    with torch.no_grad():
        assert (lite0.model(lite0.normalize(x)) - twin(lite0.normalize(x))).abs().max() < 1e-4


def test_a_model_with_nothing_to_rewrite_keeps_its_convs():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    assert replace_same_convs(model) == 0 and type(model[0]) is nn.Conv2d


def _conv_net(inplace: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU6(inplace=inplace),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8),
        nn.Identity(),
        nn.ReLU(inplace=inplace),
        nn.Conv2d(8, 3, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ).eval()


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("mkldnn", [True, False])
def test_fused_convs_give_the_hooks_leaky_gradient(inplace, mkldnn, monkeypatch):
    if not mkldnn:
        monkeypatch.setattr(fusing, "_FUSED", None)  # the path a GPU or a PyTorch without oneDNN takes
    elif fusing._FUSED is None:
        pytest.skip("this PyTorch has no oneDNN fused convolution")
    plain = _conv_net(inplace)
    fused = copy.deepcopy(plain)
    assert fuse_activations(fused) == 2
    assert [type(m) for m in fused][:5] == [ConvAct, nn.Identity, ConvAct, nn.Identity, nn.Identity]
    for p in [*plain.parameters(), *fused.parameters()]:
        p.requires_grad_(False)
    x = torch.randn(4, 3, 12, 12) * 6  # units below 0 and above 6
    for leak in (0.0, 0.25):
        ref_out, ref_grad = _input_grad(plain, x, leak)
        out, grad = _input_grad(fused, x, leak)
        assert torch.allclose(out, ref_out, atol=1e-5)
        assert torch.allclose(grad, ref_grad, atol=1e-5)
    assert not torch.allclose(_input_grad(fused, x, 0.25)[1], _input_grad(fused, x, 0.0)[1])
    # leaving the block clears the leak
    assert torch.allclose(_input_grad(fused, x)[1], _input_grad(plain, x)[1], atol=1e-5)


def test_a_shared_relu_outside_a_sequential_is_not_fused():
    class Block(nn.Module):  # torchvision's ResNet blocks: one ReLU module called twice
        def __init__(self):
            super().__init__()
            self.conv1, self.relu, self.conv2 = nn.Conv2d(3, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.relu(self.conv2(self.relu(self.conv1(x))) + x)

    block = Block()
    assert fuse_activations(block) == 0 and type(block.conv1) is nn.Conv2d


def test_the_fused_twin_of_lite0_gives_the_folded_twins_logits_and_leaky_gradients(lite0, chelsea):
    size = lite0.preprocess.input_size
    folded, fused = folded_twin(lite0.model, size), fused_twin(lite0.model, size)
    assert fused is not folded and fused_twin(lite0.model, size) is fused  # cached
    assert sum(isinstance(m, ConvAct) for m in fused.modules()) == 33
    assert not any(type(m) in (nn.ReLU, nn.ReLU6) for m in fused.modules())
    assert any(type(m) is nn.ReLU6 for m in folded.modules())  # guided backprop's twin keeps its activations
    photo = prepare(chelsea, lite0.preprocess).tensor
    x = lite0.normalize(torch.cat([photo, torch.rand(2, *photo.shape[1:], generator=torch.Generator().manual_seed(2))]))
    for leak in (0.0, 0.1):
        ref_out, ref_grad = _input_grad(folded, x, leak, goal=281)
        out, grad = _input_grad(fused, x, leak, goal=281)
        assert (out - ref_out).abs().max() < 1e-4
        assert torch.allclose(grad, ref_grad, rtol=1e-4, atol=1e-7)


def test_the_fused_twins_leak_stays_on_its_thread(lite0):
    fused = fused_twin(lite0.model, lite0.preprocess.input_size)
    x = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(3))
    plain = _input_grad(fused, x, goal=281)[1]
    seen = {}
    xx = x.clone().requires_grad_(True)
    with leaky_relus(fused, 0.1):
        worker = threading.Thread(target=lambda: seen.update(grad=_input_grad(fused, x, goal=281)[1]))
        worker.start()
        worker.join()
        out = fused(xx)
    (leaky,) = torch.autograd.grad(out[:, 281].sum(), xx)
    assert torch.equal(seen["grad"], plain)  # a Grad-CAM in another session keeps the true gradient
    assert not torch.allclose(leaky, plain)
