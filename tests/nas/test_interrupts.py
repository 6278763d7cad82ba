"""Kills and stops of `nas search`: SIGKILL mid-trial (with k workers) and a stop while the journal is written."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pandas as pd
import psutil
import pytest

from tests.conftest import PYTHON, ROOT
from tests.nas.test_cli import TINY, nas


def journal_trials(run: Path, cache: dict[str, optuna.Study]) -> list[optuna.trial.FrozenTrial]:
    """The trials as the journal shows them now (read through Optuna's public API, as another process would;
    one storage kept in `cache`, which reads only the records added since)."""
    if "study" not in cache:
        if not (run / "study.journal").is_file():
            return []
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(run / "study.journal")))
        if not storage.get_all_studies():
            return []
        cache["study"] = optuna.load_study(study_name=None, storage=storage)
    return cache["study"].get_trials(deepcopy=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_mid_trial_then_resume(tmp_path: Path, workers: int):
    """SIGKILL of the command (and, through the kernel, of its worker processes) while a trial runs, after one
    completed: the rerun keeps every completed trial as it was, records each killed one as INTERRUPTED and
    trains the same point again (if its choices were all drawn), and meets the budget exactly."""
    run = tmp_path / "run"
    args = ["search", TINY, "trials=3", f"workers={workers}", "train.epochs=10", "data.limit=300",
            "data.resolution=16", "verbose=0", "recheck=0", f"run={run}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([PYTHON, "-m", "nas.cli", *args], cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    cache: dict[str, optuna.Study] = {}
    from nas.config import compose_search

    names = compose_search("mobile400m", [TINY]).space.param_names()
    complete, running = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING
    while time.time() < deadline and proc.poll() is None:
        trials = journal_trials(run, cache)
        ends = [t.datetime_complete for t in trials if t.state == complete and t.datetime_complete]
        first_end = min(ends, default=None)
        # a trial training (all its choices drawn) that began after one completed: it has a whole trial's time
        # left, so the kill lands inside it (a trial that began beside the first one with workers=2 may end first)
        if first_end and any(t.state == running and len(t.params) == len(names) and t.datetime_start
                             and t.datetime_start >= first_end for t in trials):  # fmt: skip
            break
        time.sleep(0.2)
    children = psutil.Process(proc.pid).children(recursive=True)
    completed_before = {t.number: t.user_attrs["reward"] for t in journal_trials(run, cache) if t.state == complete}
    assert proc.poll() is None and completed_before, "no trial running after a completed one in time"
    assert len(children) >= (workers if workers > 1 else 0)  # spawned workers (and multiprocessing's tracker)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=30)  # a loaded CI machine may take a while to reap them
    assert alive == [], "worker processes outlived the killed command"
    p = nas(*args, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    df = pd.read_parquet(run / "trials.parquet")
    assert df["number"].is_unique
    assert df["state"].isin(["COMPLETE", "PRUNED", "FAIL"]).sum() == 3  # the budget is met
    killed = df[df["state"] == "INTERRUPTED"].set_index("number")
    retry = df[df["retry_of"].notna()].set_index("retry_of")
    whole = killed[killed[names].notna().all(axis=1)]  # a trial killed while its choices were drawn has no point
    assert len(whole) >= 1 and sorted(retry.index.astype(int)) == sorted(whole.index)  # each once
    assert (retry["state"] == "COMPLETE").all()
    for number, row in whole.iterrows():  # the same point, trained again
        assert retry.loc[float(number), "block_strings"] == row["block_strings"]
    for number, reward in completed_before.items():  # nothing completed before the kill was lost or changed
        now = df[df["number"] == number].iloc[0]
        assert now["state"] == "COMPLETE" and now["reward"] == reward


def test_a_stop_while_the_journal_is_written_waits_for_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """SIGTERM (raised as KeyboardInterrupt by the commands) arriving inside the journal lock's release, just
    after it unlinked its rename file: Optuna's own backend unlinks it again and raises FileNotFoundError
    (which failed the trial for good, in the parallel suite once); ours writes the record, releases the lock
    whole, then raises the interrupt."""
    import signal as sig

    from effnas.command import _terminated
    from nas.study import SignalSafeJournal

    unlink = os.unlink

    def stopped_after_unlink(path: str, *args: object, **kwargs: object) -> None:
        unlink(path, *args, **kwargs)  # type: ignore[arg-type]
        if str(path).endswith(".rename"):
            sig.raise_signal(sig.SIGTERM)  # to this thread: the handler runs before the next line of release

    record = [{"op_code": 0, "worker_id": "w", "study_name": "s", "directions": [1]}]
    previous = sig.signal(sig.SIGTERM, _terminated)
    monkeypatch.setattr(os, "unlink", stopped_after_unlink)
    try:
        with pytest.raises(FileNotFoundError):  # the control: Optuna's backend as it is
            optuna.storages.journal.JournalFileBackend(str(tmp_path / "plain.journal")).append_logs(record)
        backend = SignalSafeJournal(str(tmp_path / "study.journal"))
        with pytest.raises(KeyboardInterrupt):
            backend.append_logs(record)
    finally:
        sig.signal(sig.SIGTERM, previous)
        monkeypatch.undo()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["plain.journal", "study.journal"]  # no lock left
    assert [log["study_name"] for log in backend.read_logs(0)] == ["s"]  # the record, whole
