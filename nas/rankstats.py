"""Rank agreement between two scorings of the same architectures (numpy only; tested against scipy).

- `spearman`: Pearson correlation of the average ranks (ties share their mean rank), as scipy.stats.spearmanr;
- `kendall_tau`: Kendall's tau-b (ties in either scoring adjust the denominator), as scipy.stats.kendalltau;
- `top_k_overlap`: the share of the k best by one scoring that are among the k best by the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ranks(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    r = np.empty(len(a), dtype=float)
    r[order] = np.arange(1, len(a) + 1, dtype=float)
    for value in np.unique(a):
        tied = a == value
        if tied.sum() > 1:
            r[tied] = r[tied].mean()
    return r


def _pair(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"two equal-length 1-d scorings are needed, got shapes {a.shape} and {b.shape}")
    return a, b


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho; NaN when fewer than 2 items or one scoring is constant."""
    a, b = _pair(x, y)
    if len(a) < 2:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denom) if denom > 0 else float("nan")


def kendall_tau(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)); NaN if undefined."""
    a, b = _pair(x, y)
    if len(a) < 2:
        return float("nan")
    i, j = np.triu_indices(len(a), k=1)
    sa, sb = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    ties_a, ties_b = int((sa == 0).sum()), int((sb == 0).sum())
    denom = float(np.sqrt((n0 - ties_a) * (n0 - ties_b)))
    return float((sa * sb).sum() / denom) if denom > 0 else float("nan")


def top_k_overlap(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, k: int) -> float:
    """|top-k by x & top-k by y| / k (higher is better in both; ties broken by position)."""
    a, b = _pair(x, y)
    k = min(k, len(a))
    if k < 1:
        return float("nan")
    top_a = set(np.argsort(-a, kind="mergesort")[:k].tolist())
    top_b = set(np.argsort(-b, kind="mergesort")[:k].tolist())
    return len(top_a & top_b) / k


def spearman_interval(rho: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Approximate confidence interval of a Spearman rho over n items: Fisher's z = atanh(rho) with the
    standard error sqrt(1.06 / (n - 3)) of Fieller, Hartley and Pearson (1957). NaN for n <= 3."""
    from statistics import NormalDist

    if n <= 3 or not np.isfinite(rho):
        return float("nan"), float("nan")
    z = float(np.arctanh(np.clip(rho, -0.999999, 0.999999)))
    half = NormalDist().inv_cdf(0.5 + level / 2) * float(np.sqrt(1.06 / (n - 3)))
    return float(np.tanh(z - half)), float(np.tanh(z + half))
