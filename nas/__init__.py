"""Search: data, proxy training, the MnasNet reward, Optuna studies, run directories, the `nas` CLI."""

from nas.analysis import load_run, load_runs, pareto_front, summary
from nas.data import Data, load_data
from nas.objective import Objective, RewardConfig, evaluate_arch
from nas.reward import HARD, SOFT, reward
from nas.train import Recipe, TrainResult, train_eval

__all__ = [
    "HARD",
    "SOFT",
    "Data",
    "Objective",
    "Recipe",
    "RewardConfig",
    "TrainResult",
    "evaluate_arch",
    "load_data",
    "load_run",
    "load_runs",
    "pareto_front",
    "reward",
    "summary",
    "train_eval",
]
