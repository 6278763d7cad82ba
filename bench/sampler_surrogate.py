#!/usr/bin/env python
"""Question: which search strategy finds a good architecture in the fewest trials, over many seeds?

Real proxy training is too expensive for 20 seeds x 100 trials per sampler, so the samplers run against a
surrogate: a gradient-boosting regressor (scikit-learn) fitted on real evaluations of random architectures
of a space (a `nas search sampler=random` run directory: its trials.parquet), mapping the one-hot choices
to the trial's reward. Its Kendall tau on a held-out quarter says how faithful it is. Each sampler (through
`nas.study.make_sampler`, the search's own settings) then runs `--seeds` times for `--trials` trials
with the surrogate's prediction as the objective; the table gives the mean best-so-far reward (and its
standard error over seeds) at several budgets, and the first budget at which each sampler's mean reaches
random search's mean at the full budget. `--warmup SCORE...` adds each sampler after a zero-cost warm-up
(`nas search warmup.*`: the best `--warmup-top` of `--warmup-pool` random architectures by that score,
enqueued first, counted as trials), the warm-up's scores computed on the run's data as the search would.

    .venv/bin/python bench/sampler_surrogate.py --run bench/data/surrogate-digits [--seeds 20] [--trials 100] \
        [--warmup macs naswot synflow]

`--run` is a search run directory or a stored table of one (bench/data/surrogate-digits: trials.csv and
config.yaml, 300 evaluations on the digits scikit-learn ships, made on the 2-core CPU machine by):

    nas search "space.base=[r1_k3_s11_e1_i16_o16,r2_k3_s22_e6_i16_o24,r2_k3_s22_e6_i24_o40]" train.epochs=4 \\
        train.lr=0.1 data.limit=1000 data.resolution=16 recheck=0 verbose=0 sampler=random enqueue_base=false \\
        trials=300 seed=0 run=experiments/surrogate-digits
    .venv/bin/python bench/sampler_surrogate.py --run experiments/surrogate-digits --table bench/data/surrogate-digits
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml
from _machine import machine_line  # bench/ is on sys.path when a script runs
from scipy import stats
from sklearn.ensemble import GradientBoostingRegressor

from effnas.workers import set_threads
from nas.config import SearchConfig
from nas.study import make_sampler, warmup_picks

BUDGETS = (10, 20, 40, 60, 100)


def one_hot(vectors: np.ndarray, cards: list[int]) -> np.ndarray:
    out = np.zeros((len(vectors), sum(cards)))
    offsets = np.cumsum([0, *cards[:-1]])
    for j, off in enumerate(offsets):
        out[np.arange(len(vectors)), off + vectors[:, j]] = 1
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="bench/data/surrogate-digits")
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--samplers", nargs="+", default=["random", "tpe", "evolution", "local", "rl"])
    p.add_argument(
        "--warmup",
        nargs="*",
        default=[],
        metavar="SCORE",
        help="also run every sampler after a zero-cost warm-up by each of these scores (nas/zerocost.py)",
    )
    p.add_argument("--warmup-pool", type=int, default=200)
    p.add_argument("--warmup-top", type=int, default=10)
    p.add_argument("--table", default=None, help="also store the evaluations (trials.csv, config.yaml) in this folder")
    a = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_threads(1)
    run = Path(a.run)
    cfg = SearchConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
    space = cfg.space
    names, cards = space.param_names(), space.cardinalities()
    if (run / "trials.parquet").exists():
        df = pd.read_parquet(run / "trials.parquet")
        df = df[df["state"] == "COMPLETE"].reset_index(drop=True)
    else:  # a stored table (bench/data/...): the complete trials' choices and results
        df = pd.read_csv(run / "trials.csv")
    vectors = np.array([space.encode({n: row[n] for n in names}) for _, row in df.iterrows()])
    if a.table:
        Path(a.table).mkdir(parents=True, exist_ok=True)
        df[["number", *names, "accuracy", "macs", "reward"]].to_csv(Path(a.table) / "trials.csv", index=False)
        (Path(a.table) / "config.yaml").write_text((run / "config.yaml").read_text())

    # the surrogate, and how faithful it is on evaluations it was not fitted on
    rng = np.random.default_rng(0)
    order = rng.permutation(len(df))
    held, fit = order[: len(df) // 4], order[len(df) // 4 :]
    x, y = one_hot(vectors, cards), df["reward"].to_numpy()
    model = GradientBoostingRegressor(random_state=0).fit(x[fit], y[fit])
    tau = stats.kendalltau(model.predict(x[held]), y[held]).statistic
    rho = stats.spearmanr(model.predict(x[held]), y[held]).statistic
    model = GradientBoostingRegressor(random_state=0).fit(x, y)  # all of it for the benchmark

    def objective(trial: optuna.Trial) -> float:
        params = {n: trial.suggest_categorical(n, list(space.choices[n.split("_", 1)[1]])) for n in names}
        return float(model.predict(one_hot(np.array([space.encode(params)]), cards))[0])

    # the warm-up's picks per score and seed (the search's own `warmup_picks`: the same for every sampler)
    picks: dict[tuple[str, int], list[dict[str, object]]] = {}
    warmup_seconds: dict[str, float] = {}
    for score in a.warmup:
        t = time.perf_counter()
        for seed in range(a.seeds):
            warm = {"pool": a.warmup_pool, "top": a.warmup_top, "score": score}
            c = SearchConfig.from_dict({**cfg.source, "seed": seed, "warmup": warm})
            picks[score, seed] = [params for _, params in warmup_picks(c, None)[0]]
        warmup_seconds[score] = time.perf_counter() - t

    curves: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, score in [(n, w) for w in [None, *a.warmup] for n in a.samplers]:
        label = name if score is None else f"{name} + {score} warm-up"
        best = np.zeros((a.seeds, a.trials))
        t = time.perf_counter()
        for seed in range(a.seeds):
            c = SearchConfig.from_dict({**cfg.source, "sampler": name, "seed": seed})
            study = optuna.create_study(direction="maximize", sampler=make_sampler(c, seed))
            if c.enqueue_base:
                study.enqueue_trial(space.params_of(space.base))
            for params in picks.get((score, seed), []) if score else []:
                study.enqueue_trial(params)
            study.optimize(objective, n_trials=a.trials)
            best[seed] = np.maximum.accumulate([tr.value for tr in study.trials])
        curves[label], seconds[label] = best, time.perf_counter() - t

    target = curves["random"][:, -1].mean() if "random" in curves else np.nan
    rows = []
    for name, best in curves.items():
        mean, se = best.mean(0), best.std(0, ddof=1) / np.sqrt(a.seeds)
        reach = next((i + 1 for i, m in enumerate(mean) if m >= target), None)
        row: dict[str, object] = {"sampler": name}
        for b in BUDGETS:
            if b <= a.trials:
                row[f"best@{b}"] = f"{mean[b - 1]:.4f} ± {se[b - 1]:.4f}"
        row[f"trials to random's mean@{a.trials}"] = reach if reach is not None else f"> {a.trials}"
        row["s per seed"] = round(seconds[name] / a.seeds, 2)
        rows.append(row)
    print(machine_line(optuna=optuna.__version__))
    print(f"surrogate: GradientBoostingRegressor on one-hot choices -> reward, {len(df)} real evaluations from "
          f"{run} ({len(fit)} fitted, {len(held)} held out): Kendall tau {tau:.3f}, Spearman {rho:.3f} held out; "
          f"reward range {y.min():.4f}..{y.max():.4f}")  # fmt: skip
    print(f"{a.seeds} seeds x {a.trials} trials per sampler; mean best-so-far reward ± standard error over seeds; "
          f"random's mean best at {a.trials}: {target:.4f}")  # fmt: skip
    for score, secs in warmup_seconds.items():
        print(f"{score} warm-up: the best {a.warmup_top} of {a.warmup_pool} random architectures enqueued first (they "
              f"count as trials); scoring took {secs / a.seeds:.1f} s per seed")  # fmt: skip
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
