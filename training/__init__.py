"""Training, the one trainer for every command: data on device, augmentation, recipes, optimizers,
EMA, checkpoints, and `nas train` (training/run.py). Used by `nas`, `scaling` and the benchmarks;
imports nothing of them."""

from training.data import Data, DataConfig, Split, load_data
from training.recipe import Recipe
from training.trainer import Trained, TrainResult, resolve_device, train, train_eval

__all__ = ["Data", "DataConfig", "Recipe", "Split", "TrainResult", "Trained", "load_data", "resolve_device",
           "train", "train_eval"]  # fmt: skip
