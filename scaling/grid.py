"""The paper's small grid search for (alpha, beta, gamma) at phi = 1.

Enumerate alpha, beta, gamma on exact decimal steps, keep the points whose
alpha * beta^2 * gamma^2 is within `tol` of 2 (compared in exact decimal
arithmetic, so 1.9 * 1 * 1 is exactly 0.1 away), optionally subsample to a
`budget`, scale the base by each point and count it. Accuracy comes from an
`evaluate(arch) -> dict` hook whose keys become columns.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd

from effnas.errors import UserError
from scaling.compound import scale_compound, validate
from search_spaces import Arch, cost

TARGET = 2
"""alpha * beta^2 * gamma^2 at phi = 1: FLOPs double per unit of phi."""

MAX_AXIS = 1_000
"""Values per coefficient axis; MAX_POINTS bounds the grid enumerated before the tolerance filter."""
MAX_POINTS = 2_000_000

Evaluate = Callable[[Arch], dict[str, Any]]
"""Arch -> the columns its evaluation adds to a table (accuracy, proxy_resolution, seconds, ...)."""


def _dec(value: float, what: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise UserError(f"{what} must be a number, got {value!r}") from None
    if not d.is_finite():
        raise UserError(f"{what} must be finite, got {value!r}")
    return d


def axis(lo: float, hi: float, step: float, name: str = "range") -> list[float]:
    """lo, lo + step, ... <= hi, each value the float nearest the exact decimal."""
    a, b, s = _dec(lo, f"{name} start"), _dec(hi, f"{name} end"), _dec(step, "step")
    if not s > 0:
        raise UserError(f"step must be > 0, got {step!r}")
    if not a > 0:
        raise UserError(f"{name} must hold positive coefficients, got start {lo!r}")
    if b < a:
        raise UserError(f"{name} is empty: end {hi!r} < start {lo!r}")
    n = int((b - a) // s)
    if n + 1 > MAX_AXIS:
        raise UserError(f"{name} from {lo} to {hi} in steps of {step} has {n + 1:,} values (at most {MAX_AXIS:,}): "
                        "use a larger step")  # fmt: skip
    return [float(a + i * s) for i in range(n + 1)]


def grid_points(
    alpha_range: Sequence[float] = (1.0, 2.0),
    beta_range: Sequence[float] = (1.0, 1.5),
    gamma_range: Sequence[float] = (1.0, 1.5),
    step: float = 0.05,
    tol: float = 0.1,
    budget: int | None = None,
    seed: int = 0,
) -> list[tuple[float, float, float]]:
    """The kept (alpha, beta, gamma) points, in enumeration order.

    `budget` keeps a seeded random subset of that size (all points if the
    grid is smaller). A grid that keeps no point is a ValueError.
    """
    tol_d = _dec(tol, "tol")
    if tol_d < 0:
        raise UserError(f"tol must be >= 0, got {tol!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
        raise UserError(f"budget must be a positive integer, got {budget!r}")
    axes = [
        axis(*_pair(rng, name), step, name)
        for rng, name in ((alpha_range, "alpha range"), (beta_range, "beta range"), (gamma_range, "gamma range"))
    ]
    total = len(axes[0]) * len(axes[1]) * len(axes[2])
    if total > MAX_POINTS:
        raise UserError(f"the grid has {total:,} points before the tolerance filter (at most {MAX_POINTS:,}): "
                        "use a larger step or narrower ranges")  # fmt: skip
    kept = [
        (a, b, g)
        for a in axes[0]
        for b in axes[1]
        for g in axes[2]
        if abs(Decimal(str(a)) * Decimal(str(b)) ** 2 * Decimal(str(g)) ** 2 - TARGET) <= tol_d
    ]
    if not kept:
        sizes = "x".join(str(len(x)) for x in axes)
        raise UserError(f"the grid keeps no point: none of its {sizes} points has |alpha*beta^2*gamma^2 - 2| <= {tol}")
    if budget is not None and budget < len(kept):
        chosen = sorted(random.Random(seed).sample(range(len(kept)), budget))
        kept = [kept[i] for i in chosen]
    return kept


def _pair(rng: Sequence[float], name: str) -> tuple[float, float]:
    if len(rng) != 2:
        raise UserError(f"{name} must be two numbers (start end), got {list(rng)!r}")
    return rng[0], rng[1]


def grid(
    base: Arch,
    phi: float = 1,
    alpha_range: Sequence[float] = (1.0, 2.0),
    beta_range: Sequence[float] = (1.0, 1.5),
    gamma_range: Sequence[float] = (1.0, 1.5),
    step: float = 0.05,
    tol: float = 0.1,
    budget: int | None = None,
    seed: int = 0,
    evaluate: Evaluate | None = None,
    **scale_options: Any,
) -> pd.DataFrame:
    """One row per kept point: coefficients, product, and the scaled base's cost.

    `evaluate`, when given, is called with each scaled `Arch` and its dict
    is merged into the row (e.g. accuracy from proxy training).
    """
    validate(1.0, 1.0, 1.0, phi)
    if phi != 1:
        raise UserError(
            f"the coefficient grid is searched at phi = 1 only (got phi={phi:g}); "
            "apply the chosen coefficients at larger phi with `scale family`"
        )
    base_macs = cost(base).macs
    rows = []
    for a, b, g in grid_points(alpha_range, beta_range, gamma_range, step, tol, budget, seed):
        arch = scale_compound(base, a, b, g, 1, **scale_options)
        c = cost(arch)
        product = a * b**2 * g**2
        row: dict[str, Any] = {
            "alpha": a,
            "beta": b,
            "gamma": g,
            "product": product,
            "distance": abs(product - TARGET),
            "resolution": arch.resolution,
            "params": c.params,
            "macs": c.macs,
            "macs_ratio": c.macs / base_macs,
        }
        if evaluate is not None:
            row.update(evaluate(arch))
        rows.append(row)
    return pd.DataFrame(rows)


def rank(table: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Best first: by `metric` (descending) when the table has it, else by closeness to 2."""
    if metric in table.columns:
        keys, ascending = [metric, "distance", "macs"], [False, True, True]
    else:
        keys, ascending = ["distance", "macs", "alpha", "beta", "gamma"], [True] * 5
    return table.sort_values(keys, ascending=ascending, kind="mergesort").reset_index(drop=True)


def winner(ranked: pd.DataFrame, z: float = 1.96) -> tuple[pd.Series | None, str]:
    """The best point of a ranked grid with accuracies, or None and why there is none: every point at
    chance, or the best one's lead over the runner-up inside the validation sample's binomial noise
    (z x the standard error of the difference of two accuracies on `val_images` images each; a lower
    bound of the run's noise, which seeds add to). Rows without `val_images` (older caches) are not tested."""
    best = ranked.iloc[0]
    n = best.get("val_images")
    if n is None or pd.isna(n) or len(ranked) < 2:
        return best, ""
    n = float(n)
    chance = 1.0 / float(best["num_classes"])
    at_chance = chance + z * (chance * (1 - chance) / n) ** 0.5
    if (ranked["accuracy"] <= at_chance).all():
        return None, (f"every point is at chance (accuracy <= {at_chance:.4f} for {int(best['num_classes'])} "
                      f"classes on {int(n)} validation images)")  # fmt: skip
    p1, p2 = float(best["accuracy"]), float(ranked.iloc[1]["accuracy"])
    margin = z * ((p1 * (1 - p1) + p2 * (1 - p2)) / n) ** 0.5
    if p1 - p2 <= margin:
        ties = int((ranked["accuracy"] >= p1 - margin).sum())
        return None, (f"the best point's lead ({p1:.4f} vs {p2:.4f}) is within the validation noise "
                      f"(+-{margin:.4f} on {int(n)} images): {ties} points tie at the top")  # fmt: skip
    return best, ""
