import random
import warnings

import pytest
import torch

from search_spaces import build, cost, load_space, preset
from tests.conftest import ROOT, random_arch

fvcore_nn = pytest.importorskip("fvcore.nn")


def fvcore_conv_linear(net, res: int) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fca = fvcore_nn.FlopCountAnalysis(net.eval(), torch.randn(1, 3, res, res))
        fca.unsupported_ops_warnings(False)
        fca.uncalled_modules_warnings(False)
        ops = fca.by_operator()
    assert set(ops) <= {"conv", "linear", "batch_norm", "adaptive_avg_pool2d", "upsample_nearest2d"}, ops
    return ops.get("conv", 0) + ops.get("linear", 0)


def n_params(net) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", ["efficientnet-b0", "mnasnet-a1", "mnasnet-b1"])
def test_presets_equal_fvcore(name):
    a = preset(name)
    net = build(a)
    c = cost(a)
    assert c.macs == fvcore_conv_linear(net, a.resolution)
    assert c.params == n_params(net)


def test_b0_reference_numbers():
    c = cost(preset("efficientnet-b0"))
    assert c.macs == 384_534_752 + 1280 * 1000  # REFERENCE.md: fvcore conv + linear
    assert round(c.macs / 1e9, 2) == 0.39  # the paper's 0.39B
    assert c.params == 5_288_548
    assert sum(p.macs for p in c.parts) == c.macs
    assert [p.name for p in c.parts] == ["stem"] + [f"stage{i}" for i in range(1, 8)] + ["head"]


def test_random_archs_equal_fvcore():
    rng = random.Random(11)
    checked = 0
    for _ in range(200):
        a = random_arch(rng)
        classes = rng.choice([10, 1000])
        net = build(a, num_classes=classes)
        c = cost(a, num_classes=classes)
        assert c.params == n_params(net), a.to_block_strings()
        assert c.macs == fvcore_conv_linear(net, a.resolution), a.to_block_strings()
        checked += 1
    assert checked == 200


def test_space_samples_equal_fvcore():
    space = load_space(str(ROOT / "effnas" / "conf" / "space" / "mnasnet.yaml"))
    rng = random.Random(5)
    for _ in range(8):
        a = space.to_arch(space.random(rng))
        res = rng.choice([32, 64, 96])
        net = build(a, num_classes=10)
        assert cost(a, res, num_classes=10).macs == fvcore_conv_linear(net, res)


def test_resolution_argument():
    a = preset("efficientnet-b0")
    assert cost(a, 224).macs == cost(a).macs
    assert cost(a, 112).macs < cost(a).macs / 3
    with pytest.raises(ValueError, match="resolution"):
        cost(a, 0)
