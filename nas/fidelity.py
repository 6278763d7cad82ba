"""`nas fidelity`: does a proxy rank architectures the way a long reference training does?

A researcher runs this on their own data before trusting a search. It takes K
architectures spread over the space's MACs range (the presets in `include`, B0 and
MnasNet-A1/-B1 by default, plus space samples at evenly spaced MACs quantiles),
trains each under every proxy recipe (`seeds` seeds) and under the reference recipe
(`reference_seeds` seeds), and reports per proxy: Spearman and Kendall tau against
the reference (on accuracy and on reward; of the seeds' mean, with a 95% interval for
the reward's, and of one run alone),
seed-to-seed Spearman, the standard deviation of one run, top-k overlap, and the
compute of each side (seconds and image presentations). For every proxy of at
least `halving_eta` x `halving_min_epochs` epochs it also reports successive
halving over epochs (the `pruner=halving` idea), simulated on the proxy's own
per-epoch curves: at each rung the best 1/eta by reward go on, the rest stop
there; its ranking and the compute it spent are judged the same way.

Every training is cached in the run directory's `evaluations.jsonl`, keyed by
(architecture, recipe, data, seed), so a killed study resumes, and proxies added
later share the reference runs already made. Results: `fidelity.parquet` (one row
per training), `summary.csv` (one row per proxy), both also printed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from effnas import rundir
from effnas.config import at_least, compose, defaults, one_of, typed, typed_fields
from effnas.errors import UserError
from effnas.raycluster import EXECUTORS, RayConfig
from nas.fidelity_stats import REFERENCE, score_rows, summarize
from nas.reward import RewardConfig
from nas.zerocost import SCORES
from search_spaces import Arch, SearchSpace, cost, preset
from training.data import Data, DataConfig
from training.recipe import Recipe

log = logging.getLogger("nas")
SECTIONS = ("data", "space", "train", "proxies", "reference", "reward", "ray")
FREE_KEYS = ("name", "run", "archs", "include", "seeds", "reference_seeds", "top_k", "proxies", "reference",
             "train", "reward", "device", "verbose", "pool", "workers", "executor", "ray", "halving_eta",
             "halving_min_epochs", "scores")  # fmt: skip
"""Everything but the data, the space and the seed may change on a resume: results are cached per
(architecture, recipe, data, seed), so a changed recipe trains anew and an unchanged one is reused."""
CACHE = "evaluations.jsonl"


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
    workers: int = 1
    """Trainings at once, in separate processes (sharing the GPU, or the CPU cores)."""
    executor: str = "local"
    """local (this process, or `workers` processes) | ray (each training a Ray task, ray.* as for nas search)."""
    ray: RayConfig = RayConfig()
    halving_eta: int = 3
    """Successive halving simulated on every proxy's curves: keep the best 1/eta at each rung..."""
    halving_min_epochs: int = 1
    """...at epochs min, min x eta, min x eta^2, ... below the proxy's epochs (then its last epoch)."""
    scores: tuple[str, ...] = SCORES
    """Zero-cost scores (nas/zerocost.py) judged like the proxies, from the untrained networks; params and
    macs are the baselines a score must beat. [] for none."""
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
        at_least("workers", self.workers, 1)
        one_of("executor", self.executor, EXECUTORS)
        at_least("halving_eta", self.halving_eta, 2)
        at_least("halving_min_epochs", self.halving_min_epochs, 1)
        at_least("pool", self.pool, self.archs)
        for name in self.scores:
            one_of("scores", name, SCORES, "zero-cost score")
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
            ray=typed(RayConfig, d.get("ray"), "ray"),
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
    return {"fidelity_base": {**top, "reward": defaults(RewardConfig), "ray": defaults(RayConfig)},
            "train/base": defaults(Recipe),
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
            "train_images": r.train_images, "image_size": r.image_size, "device": r.device,
            "history": r.history}  # fmt: skip


Job = tuple[Arch, str, int]
"""(architecture, recipe name, seed index)"""


def plan(cfg: FidelityConfig) -> tuple[dict[str, Recipe], list[Job]]:
    """The recipes by name and every training of the study, proxies first (cheap and useful early)."""
    recipes = {**cfg.proxies, REFERENCE: cfg.reference}
    seeds = {name: cfg.reference_seeds if name == REFERENCE else cfg.seeds for name in recipes}
    archs = choose_archs(cfg)
    return recipes, [(a, n, s) for n in recipes for s in range(seeds[n]) for a in archs]


def run_fidelity(cfg: FidelityConfig, run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train what is not cached yet (in this process, in `workers` processes, or as Ray tasks); returns
    (one row per training, one row per proxy)."""
    from tqdm import tqdm

    from effnas.log import logging_to
    from training.data import load_data
    from training.trainer import resolve_device

    cfg.check_runnable()
    recipes, jobs = plan(cfg)
    archs = dict.fromkeys(a.name for a, _, _ in jobs)
    device = resolve_device(cfg.device)
    data = load_data(cfg.data, seed=cfg.seed)  # before the run directory: bad data leaves nothing behind
    cfg.check_compute(data.resolution)
    with rundir.open_run(run, dict(cfg.source), "fidelity", FREE_KEYS), logging_to(run / "log.txt", cfg.verbose, 1):
        cache, dropped = rundir.read_results(run / CACHE)
        if dropped:
            log.warning("%s: dropped %d bytes of a record written halfway", run / CACHE, dropped)
        keys = [_key(a, recipes[n], cfg.data, s) for a, n, s in jobs]
        todo = [i for i, k in enumerate(keys) if k not in cache]
        where = "Ray tasks" if cfg.executor == "ray" else f"{cfg.workers} worker(s)"
        log.info("%d architectures x %d recipes: %d trainings, %d cached, %d to run on %s", len(archs),
                 len(recipes), len(jobs), len(jobs) - len(todo), len(todo), where)  # fmt: skip
        bar = tqdm(total=len(todo), desc="trainings", unit="run", disable=cfg.verbose < 1 or not todo, file=sys.stderr)

        def done(i: int, result: Mapping[str, Any]) -> None:
            arch, name, s = jobs[i]
            cache[keys[i]] = result
            bar.update()
            log.info("%s %s seed %d: accuracy %.4f in %.1fs", name, arch.name, s, result["accuracy"],
                     result["seconds"])  # fmt: skip

        if todo and cfg.executor == "ray":
            from effnas.raycluster import run_tasks

            def record(k: int, result: Mapping[str, Any]) -> None:
                rundir.append_result(run / CACHE, keys[todo[k]], result)
                done(todo[k], result)

            run_tasks(cfg.ray, _remote_train, data, [(jobs[i][0], recipes[jobs[i][1]], cfg.seed + jobs[i][2])
                                                     for i in todo], record)  # fmt: skip
        elif todo and cfg.workers == 1:
            data = data.to(device)
            for i in todo:
                arch, name, s = jobs[i]
                bar.set_postfix_str(f"{name} {arch.name} seed {s}")
                result = _train_one(arch, recipes[name], data, cfg.seed + s, device)
                rundir.append_result(run / CACHE, keys[i], result)
                done(i, result)
        elif todo:
            _train_in_workers(cfg, run, todo, keys, cache, done)
        bar.close()
        rows = []
        for (arch, name, s), key in zip(jobs, keys):
            c = cost(arch, cfg.reward.resolution, cfg.reward.num_classes)
            res = cache[key]
            curve = res.get("history")  # None in records of an older version: no halving for them
            rewards = None if curve is None else [cfg.reward(a, c.macs) for a in curve]
            rows.append({"arch": arch.name, "recipe": name, "seed": s, "macs": c.macs, "params": c.params,
                         "reward": cfg.reward(res["accuracy"], c.macs), **res, "reward_history": rewards})  # fmt: skip
        table = pd.DataFrame(rows)
        summary = summarize(table, cfg.top_k, cfg.halving_eta, cfg.halving_min_epochs)
        if cfg.scores:
            scores = zero_cost_table(cfg, list(dict.fromkeys(a for a, _, _ in jobs)), data)
            rundir.write_table(run / "scores.parquet", scores)
            summary = pd.concat([summary, score_rows(scores, table, cfg.top_k)], ignore_index=True)
        rundir.write_table(run / "fidelity.parquet", table)
        rundir.write_table(run / "summary.csv", summary)
    return table, summary


def zero_cost_table(cfg: FidelityConfig, archs: list[Arch], data: Data) -> pd.DataFrame:
    """Every score of `cfg.scores` for every architecture (seconds each; deterministic, so not cached)."""
    from nas.zerocost import score

    rows = []
    for arch in archs:
        for name in cfg.scores:
            value, seconds = score(name, arch, data, cfg.seed, resolution=cfg.reward.resolution,
                                   num_classes=cfg.reward.num_classes)  # fmt: skip
            rows.append({"arch": arch.name, "score": name, "value": value, "seconds": seconds})
    table = pd.DataFrame(rows)
    log.info("zero-cost scores %s of %d architectures in %.1fs", ", ".join(cfg.scores), len(archs),
             table["seconds"].sum())  # fmt: skip
    return table


def _train_in_workers(cfg: FidelityConfig, run: Path, todo: list[int], keys: list[str],
                      cache: dict[str, Any], done: Callable[[int, Mapping[str, Any]], None]) -> None:  # fmt: skip
    """The trainings `todo` (indexes into `plan(cfg)`'s jobs) on `cfg.workers` processes sharing a queue;
    each appends its results to the cache file, which this process reads as they come."""
    from effnas.workers import queue, run_workers

    q = queue(todo)
    index = {k: i for i, k in enumerate(keys)}

    def poll() -> None:
        for key, result in rundir.read_results(run / CACHE)[0].items():
            if key not in cache and key in index:
                done(index[key], result)

    n = min(cfg.workers, len(todo))
    bad = run_workers(_worker, [(dict(cfg.source), str(run), q, n)] * n, poll)
    missing = sum(k not in cache for k in keys)
    if missing:
        raise RuntimeError(f"{missing} training(s) did not finish: worker process(es) exited with {bad} "
                           f"(their tracebacks above; {run / 'log.txt'})")  # fmt: skip


def _remote_train(data: Data, arch: Arch, recipe: Recipe, seed: int) -> dict[str, Any]:
    from effnas.raycluster import worker_device

    device = worker_device()
    return _train_one(arch, recipe, data.to(device), seed, device)


def _worker(source: dict[str, Any], run: str, q: Any, workers: int) -> None:
    from effnas.workers import die_with_parent, set_threads, take
    from training.data import load_data
    from training.trainer import resolve_device

    die_with_parent()
    set_threads(workers)
    cfg = FidelityConfig.from_dict(source)
    recipes, jobs = plan(cfg)
    device = resolve_device(cfg.device)
    data = load_data(cfg.data, seed=cfg.seed).to(device)
    while (i := take(q)) is not None:
        arch, name, s = jobs[i]
        result = _train_one(arch, recipes[name], data, cfg.seed + s, device)
        rundir.append_result(Path(run) / CACHE, _key(arch, recipes[name], cfg.data, s), result)
