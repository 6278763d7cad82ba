"""`executor=ray`: the same search as Ray Tune trials, driven by the same Optuna
sampler through Ray Tune's OptunaSearch, writing to the same journal storage.

- Data go to workers once, through Ray's object store (`tune.with_parameters`),
  as CPU tensors; each trial moves them to its own device (the GPU Ray assigned
  through CUDA_VISIBLE_DEVICES, bf16 + channels_last there).
- `ray.address=null` starts a local cluster on 127.0.0.1 for the run and shuts
  it down after; `ray.address=auto` or `host:port` joins an existing cluster.
- `ray.max_failures` retries a trial whose worker died; after that it is
  recorded as failed. `ray.asha=true` stops poor trials early (ASHA).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from nas.search import (
    STUDY,
    Setup,
    counts_toward_budget,
    make_sampler,
    make_setup,
    open_study,
    recover,
    write_results,
)
from search_spaces import SearchSpace

log = logging.getLogger("nas")
RAY_DEFAULTS = {
    "address": None,
    "cpus_per_trial": 1.0,
    "gpus_per_trial": 0.0,
    "max_concurrent": 2,
    "max_failures": 1,
    "asha": False,
    "num_cpus": None,
}
RESULT_ATTRS = ("macs", "n_params", "block_strings", "vector", "device", "accuracy", "reward", "seconds", "error")


def ray_config(cfg: dict[str, Any]) -> dict[str, Any]:
    rc = {**RAY_DEFAULTS, **(cfg.get("ray") or {})}
    unknown = sorted(set(rc) - set(RAY_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown ray keys {unknown}; expected some of {sorted(RAY_DEFAULTS)}")
    if float(rc["cpus_per_trial"]) <= 0 or float(rc["gpus_per_trial"]) < 0 or int(rc["max_concurrent"]) < 1:
        raise ValueError("ray.cpus_per_trial must be > 0, ray.gpus_per_trial >= 0, ray.max_concurrent >= 1")
    return rc


def worker_device() -> Any:
    """In a Ray worker: the GPU Ray assigned (through CUDA_VISIBLE_DEVICES) or the CPU, with the
    worker's OMP_NUM_THREADS (Ray sets it from the task's CPUs) as torch's thread count."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _trainable(config: dict[str, Any], setup: Setup, multi: bool, seed: int) -> None:
    """One Ray Tune trial: the objective's work, reporting per epoch."""
    import time

    from ray import tune

    from nas.objective import trial_record
    from nas.train import train_eval

    start = time.perf_counter()
    device = worker_device()
    params = {k: config[k] for k in setup.space.param_names()}
    arch = setup.space.to_arch(params)
    base = trial_record(setup.space, params, arch, setup.rc, device)
    macs = base["macs"]
    data = setup.data.to(device)

    def report(epoch: int, acc: float) -> None:
        r = setup.rc(acc, macs)
        tune.report({**base, "epoch": epoch + 1, "accuracy": acc, "reward": r, "neg_macs": -float(macs),
                     "seconds": time.perf_counter() - start})  # fmt: skip

    train_eval(arch, data, setup.recipe, device, report=report, seed=seed + int(config.get("_number", 0)))


def _search_class() -> type:
    from ray.tune.search.optuna import OptunaSearch

    class _Search(OptunaSearch):  # type: ignore[misc]
        """Copies each result's bookkeeping into the Optuna trial's user attributes."""

        def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
            self._attrs(trial_id, result)
            super().on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
            ot = self._ot_trials.get(trial_id)
            if error and ot is not None:
                ot.set_user_attr("error", "ray worker failed (retries exhausted)")
            elif result:
                self._attrs(trial_id, result)
            super().on_trial_complete(trial_id, result, error)

        def _attrs(self, trial_id: str, result: dict[str, Any]) -> None:
            ot = self._ot_trials.get(trial_id)
            if ot is not None:
                for k in RESULT_ATTRS:
                    if k in result:
                        ot.set_user_attr(k, result[k])

    return _Search


class _Define:
    """Define-by-run space for OptunaSearch (a class, so Ray can pickle it)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        self.space.sample(trial)
        return {"_number": trial.number}


@contextmanager
def ray_session(rc: dict[str, Any]) -> Iterator[None]:
    """Join `ray.address`, or start a local cluster on 127.0.0.1 and shut it down after."""
    import ray

    if ray.is_initialized():
        yield
        return
    if rc["address"]:
        try:
            ray.init(address=str(rc["address"]), log_to_driver=False)
        except ConnectionError as e:
            raise ValueError(f"cannot join the Ray cluster at ray.address={rc['address']}: {e}") from None
        yield  # leave a joined cluster running
        return
    ray.init(address="local", num_cpus=rc["num_cpus"], include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()


def run_ray(cfg: dict[str, Any], run: Path) -> pd.DataFrame:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    rc = ray_config(cfg)
    space = SearchSpace.from_dict(cfg["space"])
    multi = cfg["objective"] == "multi"
    study = open_study(run, cfg)
    if not study.trials and cfg.get("enqueue_base", True):
        study.enqueue_trial(space.params_of(space.base), user_attrs={"base": True})
    recover(study, space)
    budget = int(cfg["trials"])
    done = sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))
    remaining = max(0, budget - done)
    log.info("ray: %d/%d trials done, %d to run", done, budget, remaining)
    if remaining == 0:
        return write_results(run, study, space, cfg)

    with ray_session(rc):
        setup = make_setup({**cfg, "device": "cpu"})  # CPU tensors into the object store

        search = _search_class()(
            space=_Define(space),
            metric=["accuracy", "neg_macs"] if multi else "reward",
            mode=["max", "max"] if multi else "max",
            sampler=make_sampler(cfg["sampler"], int(cfg["seed"]) + len(study.trials)),
            study_name=STUDY,
            storage=study._storage,
        )
        # Optuna's pruners do not apply under Ray; ray.asha=true is the equivalent.
        scheduler = ASHAScheduler(metric="reward", mode="max", grace_period=1) if rc["asha"] and not multi else None
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, setup=setup, multi=multi, seed=int(cfg["seed"])),
            {"cpu": float(rc["cpus_per_trial"]), "gpu": float(rc["gpus_per_trial"])},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=search, scheduler=scheduler, num_samples=remaining,
                max_concurrent_trials=int(rc["max_concurrent"]),
                reuse_actors=True,  # a new worker process per trial costs seconds (torch import)
            ),
            run_config=tune.RunConfig(
                name="tune", storage_path=str((run / "ray").resolve()), verbose=min(1, int(cfg["verbose"])),
                failure_config=tune.FailureConfig(max_failures=int(rc["max_failures"])),
            ),
        )  # fmt: skip
        tuner.fit()
    return write_results(run, study, space, cfg)
