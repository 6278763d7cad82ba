"""scaling/grid.py: the coefficient grid, its axes, budget, bad settings, the evaluate hook and rank."""

from __future__ import annotations

from fractions import Fraction

import pandas as pd
import pytest

from scaling import axis, grid, grid_points, rank, scale_compound
from search_spaces import cost
from tests.scaling.helpers import B0, B0_MACS, OFFICIAL, brute_force_grid

# ---- the grid ------------------------------------------------------------------------


def test_grid_enumeration():
    table = grid(B0)
    expected = brute_force_grid()
    assert len(table) == len(expected) == 109
    got = {tuple(Fraction(str(v)) for v in row) for row in table[["alpha", "beta", "gamma"]].itertuples(index=False)}
    assert got == expected
    assert ((table["product"] - 2).abs() <= 0.1 + 1e-12).all()
    steps = {round(1 + i * 0.05, 2) for i in range(21)}  # float literals 1.0, 1.05, ..., 2.0
    assert set(table["alpha"]) <= steps and set(table["beta"]) | set(table["gamma"]) <= steps
    assert 1.15 in set(table["gamma"]) and (1.9, 1.0, 1.0) in set(zip(table.alpha, table.beta, table.gamma))
    paper = table[(table.alpha == 1.2) & (table.beta == 1.1) & (table.gamma == 1.15)].iloc[0]
    assert paper["params"] == OFFICIAL[2][3] and paper["resolution"] == 256
    assert paper["product"] == pytest.approx(1.92027)
    row = table.iloc[17]
    c = cost(scale_compound(B0, row.alpha, row.beta, row.gamma, 1))
    assert (row.params, row.macs, row.macs_ratio) == (c.params, c.macs, c.macs / B0_MACS)


def test_axis_is_exact_decimal():
    a = axis(1, 2, 0.05)
    assert len(a) == 21 and a[3] == 1.15 and a[-1] == 2.0
    assert axis(0.1, 0.3, 0.1) == [0.1, 0.2, 0.3]
    assert axis(1, 1.5, 0.2) == [1.0, 1.2, 1.4]


def test_grid_budget_is_seeded_subset():
    full = grid_points()
    sub = grid_points(budget=10, seed=3)
    assert len(sub) == 10 and set(sub) <= set(full)
    assert sub == grid_points(budget=10, seed=3) != grid_points(budget=10, seed=4)
    assert [full.index(p) for p in sub] == sorted(full.index(p) for p in sub)
    assert grid_points(budget=10_000) == full


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha_range=(1, 1.1), beta_range=(1, 1.1), gamma_range=(1, 1.1)), "keeps no point"),
        (dict(step=0), "step must be > 0"),
        (dict(alpha_range=(2, 1)), "alpha range is empty"),
        (dict(beta_range=(0, 1.5)), "positive"),
        (dict(tol=-0.1), "tol"),
        (dict(budget=0), "budget"),
        (dict(phi=2), "phi = 1 only"),
        (dict(phi=-1), "phi must be"),
    ],
)
def test_grid_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grid(B0, **kwargs)


def test_grid_evaluate_hook_and_rank():
    table = grid(B0, budget=12, evaluate=lambda a: {"accuracy": a.resolution / 1000, "res_seen": a.resolution})
    assert (table["accuracy"] * 1000 == table["resolution"]).all() and (table["res_seen"] == table["resolution"]).all()
    assert rank(table)["accuracy"].is_monotonic_decreasing
    assert rank(table.drop(columns="accuracy"))["distance"].is_monotonic_increasing


def test_winner_only_beyond_the_validation_noise():
    """The binomial rule on fixed inputs: 1.96 (scipy's 97.5% normal quantile) x the standard error of the
    difference of two accuracies on n images; every point at chance (1/C plus that noise) has no winner."""
    from scipy import stats

    from scaling.grid import winner

    z = stats.norm.ppf(0.975)
    n, p1 = 1000, 0.80
    se = ((p1 * (1 - p1) + 0.75 * 0.25) / n) ** 0.5  # 0.0188...
    table = pd.DataFrame({"alpha": [1.2, 1.1, 1.3], "accuracy": [p1, 0.75, 0.5], "val_images": n, "num_classes": 10})
    best, why = winner(table, z)
    assert p1 - 0.75 > z * se and best is not None and best["alpha"] == 1.2 and why == ""
    close = table.assign(accuracy=[p1, p1 - 0.5 * z * se, 0.5])
    best, why = winner(close, z)
    assert best is None and "within the validation noise" in why and "2 points tie" in why
    chance = table.assign(accuracy=[0.11, 0.10, 0.09])  # 1/10 + 1.96 x sqrt(0.09 / 1000) = 0.1186
    best, why = winner(chance, z)
    assert best is None and "every point is at chance" in why
    assert winner(table.drop(columns=["val_images"]), z)[0] is not None  # an older cache: not tested


def test_member_gpu_share_grows_with_its_cost():
    """ray.gpus_by_cost: gpus_per_trial x MACs / base MACs, up to a step of 0.05, at most one GPU; off, or
    without GPUs, every member gets gpus_per_trial."""
    from effnas.raycluster import RayConfig
    from scaling.evaluate import member_gpus

    rc = RayConfig(gpus_per_trial=0.25)
    assert member_gpus(rc, 400, 400) == 0.25  # the base itself
    assert member_gpus(rc, 700, 400) == pytest.approx(0.45)  # 0.4375 rounded up to a step of 0.05
    assert member_gpus(rc, 40_000, 400) == 1.0  # B7-sized: one whole GPU
    assert member_gpus(rc, 10, 400) == 0.05  # never zero: a zero share would not use the GPU at all
    assert member_gpus(RayConfig(gpus_per_trial=0.25, gpus_by_cost=False), 40_000, 400) == 0.25
    assert member_gpus(RayConfig(), 40_000, 400) == 0.0
