"""The statistics of `nas fidelity` (nas/fidelity.py): one table of trainings in, one row per recipe out.

Per proxy: rank agreement of its architectures' accuracy and reward with the reference's (Spearman,
Kendall tau, top-k overlap; of the seeds' mean, with a 95% interval, and of one run alone), seed-to-seed
Spearman, the standard deviation of one run, and compute; then successive halving simulated on its
per-epoch curves. The rank statistics themselves: nas/rankstats.py.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from nas.rankstats import kendall_tau, spearman, spearman_interval, top_k_overlap

REFERENCE = "reference"
"""The reference recipe's name in the table (no proxy may take it)."""


def successive_halving(curves: Mapping[str, Sequence[float]], min_epochs: int, eta: int
                       ) -> tuple[dict[str, float], dict[str, int]]:  # fmt: skip
    """Synchronous successive halving simulated on full-length per-epoch curves (what a pruned search
    sees of each trial). Rungs at min_epochs x eta^i below the curves' length; at each the best
    max(1, n // eta) go on (Optuna's SuccessiveHalvingPruner's share). Returns a score per
    architecture (higher is better: every survivor of a later rung above those stopped earlier,
    within a rung by the value there) and the epochs each one trained."""
    epochs = min(len(c) for c in curves.values())
    order: dict[str, tuple[int, float]] = {}
    trained: dict[str, int] = {}
    alive, rung, level = list(curves), min_epochs, 0
    while rung < epochs and len(alive) > 1:
        ranked = sorted(alive, key=lambda a: curves[a][rung - 1], reverse=True)
        alive = ranked[: max(1, len(ranked) // eta)]
        for a in ranked[len(alive) :]:
            order[a], trained[a] = (level, curves[a][rung - 1]), rung
        rung, level = rung * eta, level + 1
    for a in alive:
        order[a], trained[a] = (level, curves[a][epochs - 1]), epochs
    ranked = sorted(order, key=lambda a: order[a])
    return {a: float(i) for i, a in enumerate(ranked)}, trained


def summarize(table: pd.DataFrame, top_k: int, eta: int = 3, min_epochs: int = 1) -> pd.DataFrame:
    """One row per proxy (then its simulated successive halving, then the reference's own seed noise):
    rank agreement with the reference's mean and compute. `*_one_run` columns judge each seed's run
    alone (what one search sees), the others the mean over the seeds."""
    mean = table.groupby(["recipe", "arch"], sort=False)[["accuracy", "reward"]].mean()
    ref = mean.loc[REFERENCE]
    ref_seconds = float(table[table["recipe"] == REFERENCE]["seconds"].mean())
    rows = []
    for name in dict.fromkeys(table["recipe"]):
        t = table[table["recipe"] == name]
        m = mean.loc[name].reindex(ref.index)
        per_seed = t.pivot(index="arch", columns="seed", values="accuracy").reindex(ref.index)
        per_seed_reward = t.pivot(index="arch", columns="seed", values="reward").reindex(ref.index)
        pairs = list(combinations(per_seed.columns, 2))
        seed_rho = float(np.mean([spearman(per_seed[a], per_seed[b]) for a, b in pairs])) if pairs else math.nan
        sd = float(np.sqrt(per_seed.var(axis=1, ddof=1).mean())) if per_seed.shape[1] > 1 else math.nan
        seconds = float(t["seconds"].mean())
        low, high = spearman_interval(spearman(m["reward"], ref["reward"]), len(m))
        rows.append({
            "recipe": name,
            "archs": len(m),
            "seeds": per_seed.shape[1],
            "spearman_accuracy": spearman(m["accuracy"], ref["accuracy"]),
            "kendall_accuracy": kendall_tau(m["accuracy"], ref["accuracy"]),
            "spearman_reward": spearman(m["reward"], ref["reward"]),
            "kendall_reward": kendall_tau(m["reward"], ref["reward"]),
            "spearman_reward_low": low,
            "spearman_reward_high": high,
            f"top{top_k}_overlap_reward": top_k_overlap(m["reward"], ref["reward"], top_k),
            "spearman_reward_one_run": _mean(spearman(per_seed_reward[c], ref["reward"]) for c in per_seed.columns),
            f"top{top_k}_overlap_one_run": _mean(
                top_k_overlap(per_seed_reward[c], ref["reward"], top_k) for c in per_seed.columns
            ),
            "seed_spearman": seed_rho,
            "sd_one_run": sd,
            "mean_accuracy": float(m["accuracy"].mean()),
            "seconds_per_arch": seconds,
            "compute_vs_reference": seconds / ref_seconds if ref_seconds > 0 else math.nan,
            "images_per_arch": float(t["train_images"].mean()),
        })  # fmt: skip
        if name != REFERENCE:
            rows.extend(_halving_rows(name, t, ref["reward"], ref_seconds, top_k, eta, min_epochs))
    return pd.DataFrame(rows)


def score_rows(scores: pd.DataFrame, table: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """One summary row per zero-cost score (nas/zerocost.py; `scores`: arch, score, value, seconds): how its
    ranking of the architectures agrees with the reference's mean accuracy and reward. A score is computed
    once (it is deterministic): the one-run columns equal the others."""
    ref = table[table["recipe"] == REFERENCE].groupby("arch", sort=False)[["accuracy", "reward", "seconds"]].mean()
    rows = []
    for name, g in scores.groupby("score", sort=False):
        v = g.set_index("arch")["value"].reindex(ref.index)
        rho = spearman(v, ref["reward"])
        low, high = spearman_interval(rho, len(v))
        overlap = top_k_overlap(v, ref["reward"], top_k)
        rows.append({
            "recipe": f"score:{name}", "archs": len(v), "seeds": 1,
            "spearman_accuracy": spearman(v, ref["accuracy"]), "kendall_accuracy": kendall_tau(v, ref["accuracy"]),
            "spearman_reward": rho, "kendall_reward": kendall_tau(v, ref["reward"]),
            "spearman_reward_low": low, "spearman_reward_high": high, f"top{top_k}_overlap_reward": overlap,
            "spearman_reward_one_run": rho, f"top{top_k}_overlap_one_run": overlap,
            "seconds_per_arch": float(g["seconds"].mean()),
            "compute_vs_reference": float(g["seconds"].mean() / ref["seconds"].mean()), "images_per_arch": 0.0,
        })  # fmt: skip
    return pd.DataFrame(rows)


def _mean(values: Iterable[float]) -> float:
    v = list(values)
    return float(np.mean(v)) if v else math.nan


def _halving_rows(name: str, t: pd.DataFrame, ref: pd.Series, ref_seconds: float, top_k: int, eta: int,
                  min_epochs: int) -> list[dict[str, Any]]:  # fmt: skip
    """The summary row of successive halving simulated on proxy `name`'s curves (none if it is too
    short for one rung or its records have no curves)."""
    if "reward_history" not in t or t["reward_history"].map(lambda h: h is None).any():
        return []
    epochs = min(len(h) for h in t["reward_history"])
    if epochs < eta * min_epochs:
        return []
    rhos, overlaps, seconds, images = [], [], [], []
    for _, g in t.groupby("seed"):
        g = g.set_index("arch").reindex(ref.index)
        score, trained = successive_halving(dict(zip(g.index, g["reward_history"])), min_epochs, eta)
        s = pd.Series(score).reindex(ref.index)
        rhos.append(spearman(s, ref))
        overlaps.append(top_k_overlap(s, ref, top_k))
        share = pd.Series(trained).reindex(ref.index) / epochs
        seconds.append(float((g["seconds"] * share).mean()))
        images.append(float((g["train_images"] * share).mean()))
    row = {
        "recipe": f"{name}+halving", "archs": len(ref), "seeds": t["seed"].nunique(),
        "spearman_reward_one_run": _mean(rhos), f"top{top_k}_overlap_one_run": _mean(overlaps),
        "seconds_per_arch": _mean(seconds), "images_per_arch": _mean(images),
        "compute_vs_reference": _mean(seconds) / ref_seconds if ref_seconds > 0 else math.nan,
    }  # fmt: skip
    return [row]  # the columns it has no value for are NaN in the summary frame
