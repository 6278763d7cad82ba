"""A search on a small skeleton that learns: trials well above chance, and the pruners really pruning.

The space's base is a 3-stage skeleton (`space.base=[...]`) that reaches 0.8+ validation accuracy on
the digits scikit-learn ships in 4 epochs at 16 px, so trials differ and the pruners have something to
decide on. `pytest -k learn` selects these with the trainer's own learning tests.
"""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

SMALL = ["space.base=[r1_k3_s11_e1_i16_o16,r2_k3_s22_e6_i16_o24,r2_k3_s22_e6_i24_o40]", "train.epochs=4",
         "train.lr=0.1", "data.limit=400", "data.resolution=16", "recheck=0", "verbose=0"]  # fmt: skip


def search(run: Path, *args: str) -> pd.DataFrame:
    from nas.cli import main

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["search", *SMALL, *args, f"run={run}"]) == 0
    return pd.read_parquet(run / "trials.parquet")


def trials_of(run: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run / "study.journal")))
    return optuna.load_study(study_name=None, storage=storage).get_trials()


@pytest.mark.parametrize("pruner", ["median", "halving"])
def test_search_learns_and_the_pruner_prunes(pruner: str, tmp_path: Path):
    df = search(tmp_path / "r", "trials=8", f"pruner={pruner}")
    done = df[df["state"] == "COMPLETE"]
    assert done["accuracy"].max() >= 0.7, done["accuracy"].tolist()  # chance is 0.1
    trials = trials_of(tmp_path / "r")
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "nothing pruned"
    for t in pruned:
        step = max(t.intermediate_values)
        assert step < 3  # stopped before the last of 4 epochs
        row = df[df["number"] == t.number].iloc[0]
        assert row["state"] == "PRUNED" and row["reward"] == pytest.approx(t.intermediate_values[step])
        if pruner == "median":  # Optuna's MedianPruner rule: below the median of earlier complete trials there
            complete = [u for u in trials if u.state == TrialState.COMPLETE and u.number < t.number]
            earlier = [u.intermediate_values[step] for u in complete if step in u.intermediate_values]
            assert len(earlier) >= 3 and t.intermediate_values[step] < np.median(earlier)


def test_nas_train_learns(tmp_path: Path):
    """`nas train` of the skeleton itself (as an Arch YAML): well above chance on validation, in metrics.json."""
    import json

    from nas.cli import main
    from search_spaces import from_block_strings

    arch = from_block_strings(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e6_i16_o24", "r2_k3_s22_e6_i24_o40"], name="small")
    (tmp_path / "small.yaml").write_text(arch.to_yaml())
    args = ["train", str(tmp_path / "small.yaml"), "train.epochs=6", "train.lr=0.1", "data.limit=400",
            "data.resolution=16", "verbose=0", f"run={tmp_path / 't'}"]  # fmt: skip
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(args) == 0
    metrics = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert metrics["val_accuracy"] >= 0.6, metrics["val_history"]  # chance is 0.1
