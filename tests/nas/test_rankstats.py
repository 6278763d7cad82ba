"""nas/rankstats.py against scipy.stats on fixed inputs, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from nas.rankstats import kendall_tau, ranks, spearman, top_k_overlap

CASES = [
    ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
    ([0.3, 0.1, 0.4, 0.1, 0.5, 0.9], [0.2, 0.2, 0.7, 0.1, 0.1, 0.8]),  # ties on both sides
    ([3, 1, 2], [1, 2, 3]),
    ([10, 20, 30, 40], [40, 30, 20, 10]),  # perfectly reversed
    ([0.5, 0.5, 0.6, 0.7, 0.7, 0.7, 0.1], [1, 3, 2, 5, 4, 6, 0]),
]


@pytest.mark.parametrize("x, y", CASES)
def test_spearman_and_kendall_equal_scipy(x, y):
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)  # tau-b


def test_random_inputs_equal_scipy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(3, 40))
        x, y = rng.integers(0, 8, n).astype(float), rng.normal(size=n).round(1)
        if len(set(x)) > 1 and len(set(y)) > 1:
            assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
            assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_ranks_average_ties_like_scipy():
    x = [0.2, 0.1, 0.2, 0.9, 0.1, 0.2]
    assert list(ranks(x)) == list(stats.rankdata(x))


def test_undefined_cases_are_nan_and_shapes_checked():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(kendall_tau([1], [2]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_top_k_overlap():
    assert top_k_overlap([1, 2, 3, 4], [1, 2, 3, 4], 2) == 1.0
    assert top_k_overlap([1, 2, 3, 4], [4, 3, 2, 1], 2) == 0.0
    assert top_k_overlap([1, 2, 3, 4], [1, 3, 2, 4], 2) == 0.5
    assert top_k_overlap([1, 2], [2, 1], 5) == 1.0  # k larger than the list: all of them


def test_spearman_interval_is_fisher_z_with_fieller_se():
    from scipy.stats import norm

    from nas.rankstats import spearman_interval

    low, high = spearman_interval(0.943, 6)
    half = norm.ppf(0.975) * np.sqrt(1.06 / 3)
    assert (low, high) == pytest.approx((np.tanh(np.arctanh(0.943) - half), np.tanh(np.arctanh(0.943) + half)))
    assert low < 0.943 < high < 1
    # more items, a narrower interval; too few, none
    assert np.diff(spearman_interval(0.5, 100)) < np.diff(spearman_interval(0.5, 10))
    assert all(np.isnan(spearman_interval(0.9, 3)))
