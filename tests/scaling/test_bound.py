"""scaling/bound.py: the rounding envelopes and the a-priori rounding bound."""

from __future__ import annotations

import math
import random
import re
from dataclasses import replace

import pytest
import torch

import scaling
from scaling import repeat_block_macs, rounding_bound, scale_compound, scaling_shares
from search_spaces import SKIP_TYPES, Arch, Stage, cost, round_filters, round_repeats, scale
from tests.scaling.helpers import B0, B0_MACS, PAPER, fvcore_by_module

# ---- the rounding bound ------------------------------------------------------------


def test_width_rounding_envelope():
    """max(0.9, 1 - 4/x) <= round_filters(c, w) / x <= max(1 + 4/x, 0.9 + 8/x), x = c w, on a dense sweep."""
    worst = 0.0
    for c in range(8, 1288, 8):
        for i in range(0, 3301):
            w = 1 + i / 1000
            x = c * w
            rho = round_filters(c, w) / x
            assert max(0.9, 1 - 4 / x) - 1e-12 <= rho <= max(1 + 4 / x, 0.9 + 8 / x) + 1e-12, (c, w)
            if c >= 16:  # B0's narrowest layer
                worst = max(worst, rho)
    assert 1.33 < worst < 1.35  # c=16, x just above 17.78: 16 < 0.9 x bumps to 24; 1 + 4/x alone would miss it


def test_resolution_rounding_envelope():
    for i in range(0, 2000):
        r = 1 + i / 1000
        res = scale(B0, resolution=r).resolution
        assert abs(res - 224 * r) <= 4 and res % 8 == 0
        for s in (2, 4, 8, 16, 32):
            assert 0 <= s * -(-res // s) - res <= s - math.gcd(s, 8)


def test_depth_identity_extra_blocks_are_repeats():
    rs, m0 = repeat_block_macs(B0), cost(B0).macs
    for d in (1.0, 1.1, 1.2, 1.44, 2.0736, 3.1, 3.5831808):
        added = sum((round_repeats(s.repeats, d) - s.repeats) * r for s, r in zip(B0.stages, rs))
        assert cost(scale(B0, depth=d)).macs == m0 + added


def test_scaling_shares_equal_fvcore_on_torchvision_b0():
    pytest.importorskip("fvcore.nn")
    import torchvision

    net = torchvision.models.efficientnet_b0()
    flops = fvcore_by_module(net, 224)
    mods = dict(net.named_modules())
    total = sum(flops.values())
    assert total == B0_MACS
    w_r2 = sum(
        f for n, f in flops.items() if getattr(mods[n], "groups", 1) > 1 or getattr(mods[n], "in_channels", 0) == 3
    )
    se = sum(f for n, f in flops.items() if n.endswith((".fc1", ".fc2")))
    fc = sum(f for n, f in flops.items() if isinstance(mods[n], torch.nn.Linear))
    sq, sl, s0q, s0l = scaling_shares(B0)
    assert (sl, s0q, s0l) == pytest.approx((w_r2 / total, se / total, fc / total), rel=1e-12)
    assert sq == pytest.approx(1 - (w_r2 + se + fc) / total, rel=1e-12)


@pytest.mark.parametrize("phi", range(1, 8))
def test_rounding_bound_brackets_the_pure_family(phi):
    b = rounding_bound(B0, *PAPER, phi)
    assert b.ideal == pytest.approx(1.92027**phi)
    assert b.macs_ratio == cost(scale_compound(B0, *PAPER, phi)).macs / B0_MACS
    assert b.lower <= b.tight_lower <= b.quotient <= b.tight_upper <= b.upper
    if phi >= 3:  # forgetting to scale the resolution would fall outside the bound
        assert cost(scale_compound(B0, *PAPER, phi), 224).macs / B0_MACS / b.ideal < b.lower


def random_base(rng: random.Random) -> Arch:
    """A random base meeting the bound's assumptions (any block type, skip, kernel, stride)."""
    stages = []
    for _ in range(rng.randint(1, 6)):
        block = rng.choice(["mbconv", "ds", "conv"])
        expand = float(rng.choice([1, 2, 3, 4, 6])) if block == "mbconv" else 1.0
        stages.append(
            Stage(
                block=block,
                repeats=rng.randint(1, 4),
                kernel=rng.choice([1, 3, 5, 7]),
                stride=rng.choice([1, 2]),
                expand=expand,
                out_channels=8 * rng.randint(1, 40),
                se_ratio=rng.choice([0.0, 0.125, 0.25, 0.5]),
                skip=rng.choice(SKIP_TYPES),
            )
        )
    top = 2 * math.prod(s.stride for s in stages)
    k = -(-8 // top)
    return Arch(
        stages=tuple(stages),
        stem=8 * rng.randint(1, 6),
        head=rng.choice([0, 8 * rng.randint(1, 200)]),
        resolution=top * rng.randint(k, k + 10),  # any multiple of the total stride, not only of 8
    )


def test_rounding_bound_holds_on_random_bases():
    rng = random.Random(7)
    for _ in range(300):
        base = random_base(rng)
        alpha, beta, gamma = (round(rng.uniform(1.0, 1.6), 2) for _ in range(3))
        b = rounding_bound(base, alpha, beta, gamma, rng.randint(0, 6))
        eps = 1e-12
        assert b.lower - eps <= b.tight_lower <= b.quotient + eps <= b.tight_upper + 2 * eps <= b.upper + 3 * eps, base


def test_rounding_bound_refuses_bases_outside_its_assumptions():
    with pytest.raises(ValueError, match="8 \\* SE ratio"):
        rounding_bound(B0.replace(stages=(replace(B0.stages[0], se_ratio=0.1), *B0.stages[1:])), *PAPER, 1)
    with pytest.raises(ValueError, match="divisible by the total stride 32"):
        rounding_bound(B0.replace(resolution=240), *PAPER, 1)


def test_a_priori_bound_narrows_as_phi_grows():
    # every rounding term is relative (4/x, 4/(R r), one block in n d), so the envelope shrinks with phi
    bounds = [rounding_bound(B0, *PAPER, phi) for phi in range(0, 8)]
    assert all(a.upper > b.upper for a, b in zip(bounds, bounds[1:]))
    assert all(a.upper - a.lower > b.upper - b.lower for a, b in zip(bounds, bounds[1:]))
    assert bounds[0].tight_lower == bounds[0].quotient == bounds[0].tight_upper == 1.0


def test_bound_docstring_table_is_true():
    rows = re.findall(
        r"^\s+(\d)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+\[([\d.]+), ([\d.]+)\]\s+\[([\d.]+), ([\d.]+)\]$",
        scaling.bound.__doc__ or "",
        re.M,
    )
    assert [int(r[0]) for r in rows] == list(range(1, 8))
    for r in rows:
        b = rounding_bound(B0, *PAPER, int(r[0]))
        got = (b.macs_ratio, b.ideal, 2 ** int(r[0]), b.quotient, b.tight_lower, b.tight_upper, b.lower, b.upper)
        assert [round(float(x), 3) for x in r[1:]] == [round(x, 3) for x in got]
