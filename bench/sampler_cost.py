#!/usr/bin/env python
"""Question: what does each sampler cost per proposal on the default search space (goal: <= 10 ms, so that
orchestration stays under 0.05 s per trial)?

Runs each sampler through Optuna on the default space's choices (mobile400m: 7 stages x 6 choices) with a
synthetic objective that costs nothing (how many choices match a hidden target), in Optuna's in-memory
storage, and times the sampler's own calls (search-space inference, relative and independent sampling,
before/after trial hooks; `sampler=rl`'s PPO updates happen inside them). Also the whole study's wall time
per trial, Optuna's bookkeeping included. Torch threads as in a one-worker search (all cores).

    .venv/bin/python bench/sampler_cost.py [--trials 200] [--samplers random tpe evolution local rl]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import optuna
import pandas as pd
from _machine import machine_line  # bench/ is on sys.path when a script runs

from effnas.workers import set_threads
from nas.config import compose_search
from nas.study import make_sampler

TIMED = ("infer_relative_search_space", "sample_relative", "sample_independent", "before_trial", "after_trial")


class Timed(optuna.samplers.BaseSampler):
    """Delegates to `inner`, adding up the seconds spent in each of its calls per trial."""

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner
        self.seconds: dict[int, float] = {}

    def _timed(self, name: str, trial: Any, *args: Any) -> Any:
        t = time.perf_counter()
        out = getattr(self.inner, name)(*args)
        self.seconds[trial.number] = self.seconds.get(trial.number, 0.0) + time.perf_counter() - t
        return out

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return self._timed("infer_relative_search_space", trial, study, trial)

    def sample_relative(self, study, trial, space):  # type: ignore[no-untyped-def]
        return self._timed("sample_relative", trial, study, trial, space)

    def sample_independent(self, study, trial, name, dist):  # type: ignore[no-untyped-def]
        return self._timed("sample_independent", trial, study, trial, name, dist)

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        return self._timed("before_trial", trial, study, trial)

    def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
        return self._timed("after_trial", trial, study, trial, state, values)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--samplers", nargs="+", default=["random", "tpe", "evolution", "local", "rl"])
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    set_threads(1)
    space = compose_search("mobile400m", []).space
    names = space.param_names()
    rng = np.random.default_rng(0)
    target = {n: space.choices[n.split("_", 1)[1]][rng.integers(len(space.choices[n.split("_", 1)[1]]))]
              for n in names}  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        return float(sum(trial.suggest_categorical(n, list(space.choices[n.split("_", 1)[1]])) == v
                         for n, v in target.items()))  # fmt: skip

    rows = []
    for name in args.samplers:
        cfg = compose_search("mobile400m", [f"sampler={name}"])
        sampler = Timed(make_sampler(cfg, 0))
        study = optuna.create_study(direction="maximize", sampler=sampler)
        t = time.perf_counter()
        study.optimize(objective, n_trials=args.trials)
        wall = time.perf_counter() - t
        ms = np.array([sampler.seconds.get(i, 0.0) for i in range(args.trials)]) * 1000
        rows.append({"sampler": name, "params": len(names), "trials": args.trials,
                     "sampler ms/trial mean": ms.mean(), "p95": np.percentile(ms, 95), "max": ms.max(),
                     "study ms/trial": wall / args.trials * 1000, "best": study.best_value})  # fmt: skip
    print(machine_line(optuna=optuna.__version__))
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
