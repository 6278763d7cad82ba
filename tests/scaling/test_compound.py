"""scaling/compound.py: the compound rule, its check against torchvision, bad coefficients."""

from __future__ import annotations

import pytest

from scaling import check_compound, compound, flops_factor, scale_compound
from search_spaces import cost, preset
from tests.scaling.helpers import B0, B0_MACS, OFFICIAL, PAPER, fvcore_by_module

# ---- the compound rule ---------------------------------------------------------


def test_compound_numbers():
    assert compound(*PAPER, 0) == (1.0, 1.0, 1.0)
    assert compound(*PAPER, 1) == PAPER
    assert compound(*PAPER, 2) == pytest.approx((1.44, 1.21, 1.3225))
    assert compound(*PAPER, 7) == pytest.approx((3.5831808, 1.9487171, 2.6600198), rel=1e-7)
    assert flops_factor(*PAPER) == pytest.approx(1.2 * 1.21 * 1.3225) == pytest.approx(1.92027)
    assert all(isinstance(x, float) for x in compound(1, 1, 1, 1))
    assert scale_compound(B0, 1, 1, 1, 1).resolution == 224  # an int factor is not an exact size


def test_pure_phi1_is_b2_at_256():
    # REFERENCE rule by hand: ceil(1.2 n) blocks; 16*1.1=17.6 -> 16, 40*1.1=44 -> 48, 112*1.1 -> 120,
    # 192*1.1 -> 208, stem 35.2 -> 32, head 1408; 224*1.15 = 257.6 -> 256. That is torchvision's B2
    # (width 1.1, depth 1.2) at 256 px.
    a = scale_compound(B0, *PAPER, 1)
    assert [s.repeats for s in a.stages] == [2, 3, 3, 4, 4, 5, 2]
    assert [s.out_channels for s in a.stages] == [16, 24, 48, 88, 120, 208, 352]
    assert (a.stem, a.head, a.resolution, a.name) == (32, 1408, 256, "efficientnet-b0-phi1")
    assert a == preset("efficientnet-b2").replace(resolution=256, dropout=0.2)
    assert cost(a).params == OFFICIAL[2][3]


def test_check_compound_against_torchvision_b2_at_256():
    pytest.importorskip("fvcore.nn")
    import torchvision

    tv_macs = sum(fvcore_by_module(torchvision.models.efficientnet_b2(), 256).values())
    chk = check_compound(B0, *PAPER, 1)
    assert chk.product == pytest.approx(1.92027)
    assert chk.ideal_ratio == pytest.approx(1.92027)
    assert chk.macs_ratio == pytest.approx(tv_macs / B0_MACS, rel=1e-12)
    assert chk.rounding_factor == pytest.approx(tv_macs / B0_MACS / 1.92027)
    assert "alpha*beta^2*gamma^2 = 1.92027" in chk.summary()


@pytest.mark.parametrize(
    "args, match",
    [
        ((1.2, 1.1, 1.15, -1), "phi must be"),
        ((0, 1.1, 1.15, 1), "alpha=0"),
        ((1.2, -1.1, 1.15, 1), "beta=-1.1"),
        ((1.2, 1.1, float("nan"), 1), "gamma=nan"),
        ((1.2, 1.1, 1.15, float("inf")), "phi must be"),
    ],
)
def test_compound_rejects(args, match):
    with pytest.raises(ValueError, match=match):
        compound(*args)
    with pytest.raises(ValueError, match=match):
        scale_compound(B0, *args)


def test_validation_names_every_bad_coefficient():
    with pytest.raises(ValueError, match=r"^compound coefficients must be finite and > 0, got alpha=0, gamma=-2$"):
        compound(0, 1.1, -2, 1)
