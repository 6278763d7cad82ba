import json
import random
from functools import partial

import pytest

from search_spaces import Arch, build, from_block_strings, from_timm_arch_def, preset, preset_names
from search_spaces.presets import EFFICIENTNET_B0_BLOCKS, MNASNET_A1_BLOCKS, MNASNET_B1_BLOCKS
from tests.conftest import random_arch

# REFERENCE.md: timm's spelling of EfficientNet-B0.
TIMM_B0 = [
    ["ds_r1_k3_s1_e1_c16_se0.25"],
    ["ir_r2_k3_s2_e6_c24_se0.25"],
    ["ir_r2_k5_s2_e6_c40_se0.25"],
    ["ir_r3_k3_s2_e6_c80_se0.25"],
    ["ir_r3_k5_s1_e6_c112_se0.25"],
    ["ir_r4_k5_s2_e6_c192_se0.25"],
    ["ir_r1_k3_s1_e6_c320_se0.25"],
]


def _meta(a: Arch) -> dict:
    return {k: v for k, v in a.to_dict().items() if k not in ("stages", "stem")}


@pytest.mark.parametrize(
    "name, blocks",
    [("efficientnet-b0", EFFICIENTNET_B0_BLOCKS), ("mnasnet-a1", MNASNET_A1_BLOCKS), ("mnasnet-b1", MNASNET_B1_BLOCKS)],
)
def test_tf_strings_exact(name, blocks):
    assert preset(name).to_block_strings() == list(blocks)


@pytest.mark.parametrize("name", preset_names())
def test_tf_round_trip_every_preset(name):
    a = preset(name)
    assert from_block_strings(a.to_block_strings(), **_meta(a)) == a
    assert from_block_strings(a.to_block_strings(), **_meta(a)).to_block_strings() == a.to_block_strings()


@pytest.mark.parametrize("name", preset_names())
def test_timm_round_trip_every_preset(name):
    a = preset(name)
    assert from_timm_arch_def(a.to_timm_arch_def(), stem=a.stem, **_meta(a)) == a


def test_timm_and_tf_decode_to_same_arch():
    assert from_timm_arch_def(TIMM_B0) == from_block_strings(EFFICIENTNET_B0_BLOCKS)
    assert preset("efficientnet-b0").to_timm_arch_def() == TIMM_B0


def test_timm_own_arch_def_matches():
    """The arch_def our encoder writes is what timm's own decoder builds B0 from."""
    from timm.models._efficientnet_builder import decode_arch_def

    ours = decode_arch_def(preset("efficientnet-b0").to_timm_arch_def())
    theirs = decode_arch_def(TIMM_B0)
    assert ours == theirs


def test_random_round_trips():
    rng = random.Random(7)
    for _ in range(200):
        a = random_arch(rng)
        assert from_block_strings(a.to_block_strings(), **_meta(a)) == a
        ok_for_timm = all(s.skip != "pool" and not (s.block == "conv" and s.se_ratio) for s in a.stages)
        if ok_for_timm:
            assert from_timm_arch_def(a.to_timm_arch_def(), stem=a.stem, **_meta(a)) == a
        else:
            with pytest.raises(ValueError, match="timm"):
                a.to_timm_arch_def()


@pytest.mark.parametrize(
    "strings, token",
    [
        (["r1_k3_s11_e1_o16"], "'i'"),  # missing input channels
        (["r1_k3_s11_e1_i32"], "'o'"),  # missing output channels
        (["k3_s11_e1_i32_o16"], "'r'"),  # missing repeats
        (["r1_k3_s1_e1_i32_o16"], "s1"),  # TF needs two stride digits
        (["r1_k4_s11_e1_i32_o16"], "k4"),  # even kernel
        (["r1_k0_s11_e1_i32_o16"], "k0"),  # zero kernel
        (["r0_k3_s11_e1_i32_o16"], "r0"),  # zero repeats
        (["r1_k3_s11_e1_i32_o16_se1.5"], "se1.5"),  # SE ratio > 1
        (["r1_k3_s11_e1_i32_o16_x9"], "x9"),  # unknown key
        (["r1_k3_s12_e1_i32_o16"], "s12"),  # non-square stride
        (["r1_k3_s11_e1_i32_o16", "r2_k3_s22_e6_i24_o24"], "i24"),  # channel mismatch
        (["r1_k3_s11_e1_i32_o16__se0.25"], "empty token"),
        (["r1_k3_s11_eX_i32_o16"], "eX"),
        (["r1_r2_k3_s11_e1_i32_o16"], "r2"),  # repeated key
    ],
)
def test_bad_tf_strings(strings, token):
    with pytest.raises(ValueError) as info:
        from_block_strings(strings)
    msg = str(info.value)
    assert token in msg
    assert "\n" not in msg
    assert any(s in msg for s in strings)


def test_stem_mismatch():
    with pytest.raises(ValueError, match="stem"):
        from_block_strings(EFFICIENTNET_B0_BLOCKS, stem=24)


@pytest.mark.parametrize(
    "arch_def, token",
    [
        ([["xx_r1_k3_s1_c16"]], "xx"),
        ([["ir_r1_k3_s22_e6_c16"]], "s22"),
        ([["ir_r1_k3_s2_e6"]], "'c'"),
        ([["cn_r1_k3_s1_c16_se0.25"]], "se0.25"),
        ([["ds_r1_k3_s1_e6_c16"]], "e6"),
    ],
)
def test_bad_timm_strings(arch_def, token):
    with pytest.raises(ValueError) as info:
        from_timm_arch_def(arch_def)
    assert token in str(info.value)


def test_mbconv_expand_one_has_no_tf_string():
    a = from_timm_arch_def([["ir_r1_k3_s1_e1_c16"]])
    with pytest.raises(ValueError, match="expand 1"):
        a.to_block_strings()


def test_extensions_round_trip():
    strings = ["r1_k3_s11_e1_i32_o32_se0.25_conv", "r2_k5_s22_e3_i32_o48_poolskip", "r1_k3_s11_e1_i48_o48_noskip"]
    a = from_block_strings(strings)
    assert [s.block for s in a.stages] == ["conv", "mbconv", "ds"]
    assert [s.skip for s in a.stages] == ["identity", "pool", "none"]
    assert a.to_block_strings() == strings


def test_timm_builds_the_same_network_from_random_exported_space_samples():
    """timm's own decoder and EfficientNet class, given only the JSON we export (`to_timm_spec`: arch_def,
    activation, BatchNorm eps and momentum, stem and head widths), build the network ours builds: same
    parameters, same outputs. Every point of space=timm exports; the default space's refusals are exact."""
    import torch
    from timm.layers.create_act import get_act_layer
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet
    from torch import nn

    from nas.config import compose_search
    from search_spaces.codecs import to_timm_spec

    space = compose_search("mobile400m", ["space=timm"]).space
    assert space.timm_incompatible() == []
    rng = random.Random(3)
    for i in range(6):
        arch = space.to_arch(space.random(rng)).replace(activation=["silu", "relu"][i % 2])
        spec = json.loads(json.dumps(to_timm_spec(arch)))  # what a user reads back from the file
        torch.manual_seed(i)
        bn = partial(nn.BatchNorm2d, eps=spec["bn_eps"], momentum=spec["bn_momentum"])
        peer = EfficientNet(block_args=decode_arch_def(spec["arch_def"]), num_classes=10,
                            stem_size=spec["stem_size"], num_features=spec["num_features"],
                            act_layer=get_act_layer(spec["act_layer"]), norm_layer=bn).eval()  # fmt: skip
        ours = build(arch, num_classes=10).eval()
        theirs_sd, ours_sd = peer.state_dict(), ours.state_dict()
        assert [v.shape for v in theirs_sd.values()] == [v.shape for v in ours_sd.values()], arch.to_block_strings()
        for m in peer.modules():  # running statistics as after training, not 0/1 (eps then shows too)
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.normal_(0.0, 0.1)
        ours.load_state_dict(dict(zip(ours_sd, peer.state_dict().values())))
        x = torch.randn(2, 3, 64, 64)
        with torch.no_grad():
            assert (peer(x) - ours(x)).abs().max().item() < 1e-4 * max(1.0, ours(x).abs().max().item()), spec
    default = compose_search("mobile400m", []).space
    assert default.timm_incompatible() == ["timm has no pooling skip", "timm's cn block has no SE"]
