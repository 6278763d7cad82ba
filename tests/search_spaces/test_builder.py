import random

import pytest
import torch
from torch import nn

from search_spaces import REFERENCE_PARAMS, Arch, build, from_block_strings, preset
from tests.conftest import random_arch


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_param_counts_match_torchvision_timm(name):
    assert n_params(build(preset(name))) == REFERENCE_PARAMS[name]


@pytest.mark.parametrize(
    "name, timm_name",
    [("efficientnet-b0", "efficientnet_b0"), ("mnasnet-a1", "semnasnet_100"), ("mnasnet-b1", "mnasnet_100")],
)
def test_same_function_as_timm(name, timm_name):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    peer = timm.create_model(timm_name, pretrained=False).eval()
    for m in peer.modules():  # non-trivial BN statistics so that BN is really compared
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    eps = next(m.eps for m in peer.modules() if isinstance(m, nn.BatchNorm2d))
    ours = build(preset(name).replace(bn_eps=eps)).eval()
    theirs_sd, ours_sd = peer.state_dict(), ours.state_dict()
    assert [v.shape for v in theirs_sd.values()] == [v.shape for v in ours_sd.values()]
    ours.load_state_dict(dict(zip(ours_sd, theirs_sd.values())))
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        diff = (peer(x) - ours(x)).abs().max().item()
    assert diff < 1e-4


def test_residual_rules():
    a = from_block_strings(["r2_k3_s11_e1_i16_o16", "r2_k3_s11_e1_i16_o16_noskip"], head=0)
    net = build(a)
    shortcuts = [b.spec.shortcut for stage in net.blocks for b in stage]
    assert shortcuts == ["identity", "identity", "none", "none"]


def test_pool_skip_shapes_and_function():
    a = from_block_strings(["r1_k3_s22_e3_i16_o24_poolskip", "r1_k3_s22_e3_i24_o16_poolskip"], stem=16, head=0)
    net = build(a, num_classes=5).eval()
    block = net.blocks[0][0]
    assert block.spec.shortcut == "pool"
    x = torch.randn(2, 16, 15, 15)  # odd size: conv and pool both give ceil(15 / 2)
    with torch.no_grad():
        y = block(x)
        assert y.shape == (2, 24, 8, 8)
        # the shortcut is exactly avg-pool of the input, zero-padded channels
        branch = block.bn3(
            block.conv_pwl(block.se(block.act2(block.bn2(block.conv_dw(block.act1(block.bn1(block.conv_pw(x))))))))
        )
        short = torch.nn.functional.avg_pool2d(x, 2, 2, ceil_mode=True)
        assert torch.allclose(y - branch, torch.cat([short, torch.zeros(2, 8, 8, 8)], 1), atol=1e-6)
        assert net(torch.randn(2, 3, 33, 33)).shape == (2, 5)


def test_random_archs_run():
    rng = random.Random(3)
    for _ in range(10):
        a = random_arch(rng)
        net = build(a, num_classes=7)
        out = net(torch.randn(2, 3, a.resolution, a.resolution))
        assert out.shape == (2, 7)
        out.sum().backward()


def test_stochastic_depth_linear():
    net = build(preset("efficientnet-b0"))
    rates = [b.spec.drop_path for stage in net.blocks for b in stage]
    assert len(rates) == 16
    assert rates[0] == 0.0
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])


def test_channels_last_and_bf16_autocast():
    net = build(preset("efficientnet-b0"), num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
        cl = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
        assert torch.allclose(ref, cl, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf = net(x)
    assert bf.dtype == torch.bfloat16
    assert (bf.float() - ref).abs().max() < 0.1 * ref.abs().max() + 0.05


@pytest.mark.slow
def test_torch_compile():
    a = Arch.from_dict(preset("mnasnet-a1").to_dict() | {"name": "small"})
    net = build(a, num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(net)
    with torch.no_grad():
        assert torch.allclose(compiled(x), net(x), atol=1e-4)


def test_build_rejects_non_arch():
    with pytest.raises(TypeError, match="Arch"):
        build({"stages": []})  # type: ignore[arg-type]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_bf16_channels_last_train_step():
    net = build(preset("efficientnet-b0"), num_classes=10).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    x = torch.randn(64, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,), device="cuda")
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)


def test_drop_path_keeps_the_expectation():
    from search_spaces.builder import drop_path

    torch.manual_seed(0)
    x = torch.ones(20000, 3, 2, 2)
    y = drop_path(x, 0.2, training=True)
    per_sample = y[:, 0, 0, 0]
    assert set(per_sample.unique().tolist()) == {0.0, 1.25}  # dropped, or scaled by 1 / 0.8
    assert abs((per_sample == 0).float().mean().item() - 0.2) < 0.02
    assert abs(y.mean().item() - 1.0) < 0.03
    assert torch.equal(drop_path(x, 0.2, training=False), x)


def test_stride_reduction_changes_feature_maps_not_parameters():
    """Proxy-only: the stem, then the first stride-2 blocks, at stride 1; same parameters, same shortcuts."""
    b0 = preset("efficientnet-b0")
    x = torch.randn(2, 3, 32, 32)
    n_params = sum(p.numel() for p in build(b0, 10).parameters())
    sizes = {}
    for n in (0, 1, 2, 3):
        net = build(b0, 10, stride_reduction=n).eval()
        assert sum(p.numel() for p in net.parameters()) == n_params
        assert [b.spec.shortcut for s in net.blocks for b in s] == [
            b.spec.shortcut for s in build(b0, 10).blocks for b in s
        ]
        with torch.no_grad():
            sizes[n] = net.forward_features(x).shape[-1]
            assert net(x).shape == (2, 10)
    assert sizes == {0: 1, 1: 2, 2: 4, 3: 8}  # total stride 32, 16, 8, 4 on 32-px images
    rng = random.Random(3)
    for _ in range(20):  # every block type and skip, pooling shortcuts at the reduced strides included
        arch = random_arch(rng)
        net = build(arch, 7, stride_reduction=2).eval()
        assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in build(arch, 7).parameters())
        with torch.no_grad():
            assert net(torch.randn(1, 3, 24, 24)).shape == (1, 7)
