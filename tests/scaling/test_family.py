"""scaling/family.py: the official family (hand-set coefficients) and pure compound families."""

from __future__ import annotations

import math

import pytest
import torch

from scaling import family, family_table, official_family, official_multipliers, pure_multipliers, scale_compound
from search_spaces import build, cost
from tests.scaling.helpers import B0, OFFICIAL, PAPER, fvcore_by_module


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ---- the official family (hand-set coefficients) -----------------------------


def test_official_family_matches_reference_table():
    members = official_family(range(1, 8))
    table = family_table(members, B0, official_multipliers(range(1, 8)))
    for (phi, arch), row in zip(members, table.itertuples()):
        width, depth, res, params, gmacs, paper_flops = OFFICIAL[phi]
        c = cost(arch)
        assert (arch.name, arch.resolution, c.params) == (f"efficientnet-b{phi}", res, params)
        assert round(c.macs / 1e9, 4) == gmacs  # fvcore conv+linear on torchvision's model
        assert abs(c.macs / 1e9 / paper_flops - 1) < 0.05  # the paper's FLOPs row
        assert (row.width, row.depth, row.resolution, row.params, row.macs) == (width, depth, res, params, c.macs)
        assert row.macs_ratio == pytest.approx(gmacs / 0.3858, rel=2e-4)


@pytest.mark.parametrize("phi", [1, 2])
def test_official_b1_b2_equal_torchvision_and_fvcore(phi):
    pytest.importorskip("fvcore.nn")
    import torchvision

    ((_, arch),) = official_family([phi])
    tv = getattr(torchvision.models, f"efficientnet_b{phi}")()
    assert cost(arch).params == n_params(tv) == OFFICIAL[phi][3]
    assert cost(arch).macs == sum(fvcore_by_module(build(arch), arch.resolution).values())


# ---- families --------------------------------------------------------------------------


def test_pure_family_and_table():
    members = family(B0, *PAPER)
    assert [p for p, _ in members] == list(range(8))
    assert members[0][1] == B0 and members[1][1] == scale_compound(B0, *PAPER, 1)
    table = family_table(members, B0, pure_multipliers(*PAPER))
    assert list(table.columns[:6]) == ["phi", "name", "width", "depth", "resolution", "blocks"]
    assert {"params", "macs", "macs_ratio", "two_pow_phi"} <= set(table.columns)
    assert list(table.two_pow_phi) == [2**p for p in range(8)]
    assert list(table.ideal_ratio) == pytest.approx([1.92027**p for p in range(8)])
    assert list(table.width) == pytest.approx([1.1**p for p in range(8)])
    assert table.macs_ratio[0] == 1.0 and table.params[1] == OFFICIAL[2][3]
    # by hand: 224 * 1.15^phi = 257.6, 296.2, 340.7, 391.8, 450.5, 518.1, 595.8, to the nearest multiple of 8
    assert list(table.resolution) == [224, 256, 296, 344, 392, 448, 520, 592]
    assert table.macs_ratio.is_monotonic_increasing
    assert math.isnan(family_table(members[:1], B0).width[0])
    with pytest.raises(ValueError, match="phi 0..8"):
        official_family([9])
