"""`nas fidelity`: does a proxy rank architectures the way a long reference training does?

A researcher runs this on their own data before trusting a search. It takes K
architectures spread over the space's MACs range (the presets in `include`, B0 and
MnasNet-A1/-B1 by default, plus space samples at evenly spaced MACs quantiles),
trains each under every proxy recipe (`seeds` seeds) and under the reference recipe
(`reference_seeds` seeds), and reports per proxy: Spearman and Kendall tau against
the reference (on accuracy and on reward), seed-to-seed Spearman, the standard
deviation of one run, top-k overlap, and the compute of each side (seconds and
image presentations).

Every training is cached in the run directory's `evaluations.jsonl`, keyed by
(architecture, recipe, data, seed), so a killed study resumes, and proxies added
later share the reference runs already made. Results: `fidelity.parquet` (one row
per training), `summary.csv` (one row per proxy), both also printed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effnas import rundir
from effnas.config import at_least, compose, defaults, typed_fields
from effnas.errors import UserError
from nas.rankstats import kendall_tau, spearman, top_k_overlap
from nas.reward import RewardConfig
from search_spaces import Arch, SearchSpace, cost, preset
from training.data import Data, DataConfig
from training.recipe import Recipe

log = logging.getLogger("nas")
SECTIONS = ("data", "space", "train", "proxies", "reference", "reward")
FREE_KEYS = ("name", "run", "archs", "include", "seeds", "reference_seeds", "top_k", "proxies", "reference",
             "train", "reward", "device", "verbose", "pool")  # fmt: skip
"""Everything but the data, the space and the seed may change on a resume: results are cached per
(architecture, recipe, data, seed), so a changed recipe trains anew and an unchanged one is reused."""
CACHE = "evaluations.jsonl"
REFERENCE = "reference"


@dataclass(frozen=True)
class FidelityConfig:
    data: DataConfig
    space: SearchSpace
    proxies: Mapping[str, Recipe]
    """Named proxy recipes: each is `train` (the base recipe) with its own overrides."""
    reference: Recipe
    """The long recipe the proxies are judged against (`train` with these overrides)."""
    reward: RewardConfig = RewardConfig()
    name: str = "fidelity"
    run: str | None = None
    archs: int = 8
    """K: architectures in the study (the `include` presets first, then space samples)."""
    include: tuple[str, ...] = ("efficientnet-b0", "mnasnet-a1", "mnasnet-b1")
    pool: int = 500
    """Space samples the K are picked from, at evenly spaced quantiles of their MACs."""
    seeds: int = 2
    reference_seeds: int = 1
    top_k: int = 3
    seed: int = 0
    device: str = "auto"
    verbose: int = 1
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.archs < 3:
            raise UserError(f"archs must be >= 3 to rank anything, got {self.archs}")
        if len(self.include) > self.archs:
            raise UserError(f"include names {len(self.include)} presets but archs={self.archs}")
        at_least("seeds", self.seeds, 1)
        at_least("reference_seeds", self.reference_seeds, 1)
        at_least("top_k", self.top_k, 1)
        at_least("pool", self.pool, self.archs)
        if not self.proxies:
            raise UserError("proxies is empty: name at least one proxy recipe (e.g. proxies.proxy={})")
        if REFERENCE in self.proxies:
            raise UserError(f"a proxy may not be called {REFERENCE!r}")
        for name, recipe in self.proxies.items():
            if recipe == self.reference:
                raise UserError(f"proxy {name!r} is the reference recipe itself: nothing to compare")

    def check_compute(self, data_resolution: int) -> None:
        """UserError unless the reference costs more than every proxy (at the data's resolution)."""
        ref = relative_compute(self.reference, data_resolution)
        costs = {name: relative_compute(recipe, data_resolution) for name, recipe in self.proxies.items()}
        for name, mine in costs.items():
            if mine >= ref:
                raise UserError(
                    f"the reference is not more expensive than proxy {name!r} ({ref:g} vs {mine:g} "
                    "epoch x pixel units): give it more epochs"
                )
        for name, mine in costs.items():
            if mine * 10 > ref:
                log.warning("proxy %r costs %.0f%% of the reference (a faithful study wants <= 10%%)", name,
                            100 * mine / ref)  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FidelityConfig:
        from nas.config import space_of

        base = d.get("train") or {}
        proxies = d.get("proxies") or {}
        if not isinstance(proxies, Mapping):
            raise UserError(f"proxies must map names to recipe overrides, got {proxies!r}")
        top = typed_fields(cls, d, "", skip=(*SECTIONS, "source"))
        return cls(
            data=DataConfig.from_mapping(d.get("data")),
            space=space_of(d.get("space")),
            proxies={str(n): _recipe(base, o, f"proxies.{n}") for n, o in proxies.items()},
            reference=_recipe(base, d.get("reference"), "reference"),
            reward=RewardConfig.from_mapping(d.get("reward")),
            source=dict(d),
            **top,
        )

    def check_runnable(self) -> None:
        from training.trainer import resolve_device

        self.data.check_files()
        resolve_device(self.device)
        for name in self.include:
            preset(name)


def _recipe(base: Mapping[str, Any], overrides: Any, where: str) -> Recipe:
    if overrides is not None and not isinstance(overrides, Mapping):
        raise UserError(f"{where} must be a mapping of train keys, got {overrides!r}")
    try:
        return Recipe.from_mapping({**base, **(overrides or {})})
    except UserError as e:
        raise UserError(f"{where}: {e}") from None


def relative_compute(recipe: Recipe, data_resolution: int) -> float:
    """Training compute of a recipe relative to others on the same data: epochs x the pixels of the
    equivalent input (each stride reduction doubles the side every later layer sees)."""
    side = recipe.image_size if isinstance(recipe.image_size, int) else data_resolution
    return float(recipe.epochs * (side * 2**recipe.stride_reduction) ** 2)


def bases() -> dict[str, dict[str, Any]]:
    top = {k: v for k, v in defaults(FidelityConfig).items() if k not in SECTIONS}
    top["include"] = list(top["include"])
    return {"fidelity_base": {**top, "reward": defaults(RewardConfig)}, "train/base": defaults(Recipe),
            "data/base": defaults(DataConfig)}  # fmt: skip


def compose_fidelity(conf: str, overrides: list[str]) -> FidelityConfig:
    return FidelityConfig.from_dict(compose(conf, overrides, bases()))


# ---- the architectures -------------------------------------------------------------------------


def choose_archs(cfg: FidelityConfig) -> list[Arch]:
    """The `include` presets, then space samples at evenly spaced quantiles of MACs (seeded)."""
    chosen = [preset(n) for n in cfg.include]
    rng = random.Random(cfg.seed)
    pool: dict[str, tuple[int, Arch]] = {}
    for _ in range(cfg.pool):
        arch = cfg.space.to_arch(cfg.space.random(rng))
        pool.setdefault(arch.to_json(), (cost(arch, cfg.reward.resolution, cfg.reward.num_classes).macs, arch))
    ranked = sorted(pool.values(), key=lambda t: t[0])
    need = cfg.archs - len(chosen)
    picks = [ranked[round(i * (len(ranked) - 1) / max(1, need - 1))][1] for i in range(need)] if need else []
    taken = {a.replace(name="").to_json() for a in chosen}
    for i, arch in enumerate(picks):
        if arch.to_json() in taken:
            continue
        taken.add(arch.to_json())
        chosen.append(arch.replace(name=f"space-{i}"))
    return chosen


# ---- the trainings -----------------------------------------------------------------------------


def _key(arch: Arch, recipe: Recipe, data: DataConfig, seed: int) -> str:
    blob = json.dumps([arch.replace(name="").to_dict(), asdict(recipe), asdict(data), seed], sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()


def _train_one(arch: Arch, recipe: Recipe, data: Data, seed: int, device: Any) -> dict[str, Any]:
    from training.trainer import train_eval

    r = train_eval(arch, data, recipe, device, seed=seed)
    return {"accuracy": r.accuracy, "train_seconds": r.train_seconds, "seconds": r.seconds,
            "train_images": r.train_images, "image_size": r.image_size, "device": r.device}  # fmt: skip


def run_fidelity(cfg: FidelityConfig, run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train what is not cached yet; returns (one row per training, one row per proxy)."""
    from tqdm import tqdm

    from effnas.log import logging_to
    from training.data import load_data
    from training.trainer import resolve_device

    cfg.check_runnable()
    archs = choose_archs(cfg)
    device = resolve_device(cfg.device)
    data = load_data(cfg.data, seed=cfg.seed)  # before the run directory: bad data leaves nothing behind
    cfg.check_compute(data.resolution)
    recipes = {**cfg.proxies, REFERENCE: cfg.reference}
    seeds = {name: cfg.reference_seeds if name == REFERENCE else cfg.seeds for name in recipes}
    jobs = [(a, n, s) for n in recipes for s in range(seeds[n]) for a in archs]  # proxies first: cheap, useful
    with rundir.open_run(run, dict(cfg.source), "fidelity", FREE_KEYS), logging_to(run / "log.txt", cfg.verbose, 1):
        cache, dropped = rundir.read_results(run / CACHE)
        if dropped:
            log.warning("%s: dropped %d bytes of a record written halfway", run / CACHE, dropped)
        todo = [j for j in jobs if _key(j[0], recipes[j[1]], cfg.data, j[2]) not in cache]
        log.info("%d architectures x %d recipes: %d trainings, %d cached, %d to run", len(archs), len(recipes),
                 len(jobs), len(jobs) - len(todo), len(todo))  # fmt: skip
        if todo:
            data = data.to(device)
            bar = tqdm(todo, desc="trainings", unit="run", disable=cfg.verbose < 1, file=sys.stderr)
            for arch, name, s in bar:
                bar.set_postfix_str(f"{name} {arch.name} seed {s}")
                result = _train_one(arch, recipes[name], data, cfg.seed + s, device)
                key = _key(arch, recipes[name], cfg.data, s)
                rundir.append_result(run / CACHE, key, result)
                cache[key] = result
                log.info("%s %s seed %d: accuracy %.4f in %.1fs", name, arch.name, s, result["accuracy"],
                         result["seconds"])  # fmt: skip
            bar.close()
        rows = []
        for arch, name, s in jobs:
            c = cost(arch, cfg.reward.resolution, cfg.reward.num_classes)
            res = cache[_key(arch, recipes[name], cfg.data, s)]
            rows.append({"arch": arch.name, "recipe": name, "seed": s, "macs": c.macs, "params": c.params,
                         "reward": cfg.reward(res["accuracy"], c.macs), **res})  # fmt: skip
        table = pd.DataFrame(rows)
        summary = summarize(table, cfg.top_k)
        rundir.write_table(run / "fidelity.parquet", table)
        rundir.write_table(run / "summary.csv", summary)
    return table, summary


# ---- the statistics ----------------------------------------------------------------------------


def summarize(table: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """One row per proxy (and the reference's own seed noise): rank agreement and compute."""
    mean = table.groupby(["recipe", "arch"], sort=False)[["accuracy", "reward"]].mean()
    ref = mean.loc[REFERENCE]
    ref_seconds = float(table[table["recipe"] == REFERENCE]["seconds"].mean())
    rows = []
    for name in dict.fromkeys(table["recipe"]):
        t = table[table["recipe"] == name]
        m = mean.loc[name].reindex(ref.index)
        per_seed = t.pivot(index="arch", columns="seed", values="accuracy").reindex(ref.index)
        pairs = list(combinations(per_seed.columns, 2))
        seed_rho = float(np.mean([spearman(per_seed[a], per_seed[b]) for a, b in pairs])) if pairs else math.nan
        sd = float(np.sqrt(per_seed.var(axis=1, ddof=1).mean())) if per_seed.shape[1] > 1 else math.nan
        rows.append({
            "recipe": name,
            "archs": len(m),
            "seeds": per_seed.shape[1],
            "spearman_accuracy": spearman(m["accuracy"], ref["accuracy"]),
            "kendall_accuracy": kendall_tau(m["accuracy"], ref["accuracy"]),
            "spearman_reward": spearman(m["reward"], ref["reward"]),
            "kendall_reward": kendall_tau(m["reward"], ref["reward"]),
            f"top{top_k}_overlap_reward": top_k_overlap(m["reward"], ref["reward"], top_k),
            "seed_spearman": seed_rho,
            "sd_one_run": sd,
            "mean_accuracy": float(m["accuracy"].mean()),
            "seconds_per_arch": float(t["seconds"].mean()),
            "compute_vs_reference": float(t["seconds"].mean()) / ref_seconds if ref_seconds > 0 else math.nan,
            "images_per_arch": float(t["train_images"].mean()),
        })  # fmt: skip
    return pd.DataFrame(rows)
