"""Fault injection: every case of tests/effnas/faults.py ends in one `error:` line, the right exit code,
and nothing lost (bench/bad_input.py runs the same table as subprocesses and counts it by category)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import PYTHON, ROOT, in_process
from tests.effnas.faults import CASES, Case, check, snapshot


@pytest.mark.parametrize("case", CASES, ids=[f"{c.category}: {c.name}" for c in CASES])
def test_case(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    if case.setup is not None:
        case.setup(tmp_path)
    before = snapshot(tmp_path)
    code, _, stderr = in_process(*[a.format(tmp=tmp_path) for a in case.argv])
    assert check(case, code, stderr, before, snapshot(tmp_path), tmp_path) == [], stderr


def test_the_table_covers_every_category():
    assert {c.category for c in CASES} == {"config", "latency", "data", "arch", "run directory", "file system"}
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_prints_the_resume_hint_and_the_rerun_finishes(sig: signal.Signals, tmp_path: Path):
    run = tmp_path / "run"
    # four trials: after the first completes, three more are left, seconds of work to interrupt (with two, the
    # last trial of a small network could end the run between the poll and the signal: exit 0, seen once)
    args = [PYTHON, "-m", "nas.cli", "search", "trials=4", "train.epochs=2", "data.limit=300", "data.resolution=16",
            "verbose=0", "recheck=0", f"run={run}"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if (run / "trials.parquet").exists() and (pd.read_parquet(run / "trials.parquet")["state"] == "COMPLETE").any():
            break
    done = pd.read_parquet(run / "trials.parquet")
    done = done[done["state"] == "COMPLETE"]
    assert proc.poll() is None and len(done) >= 1, "the run ended before it could be interrupted"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    lines = [ln for ln in stderr.strip().splitlines() if not ln.startswith("run directory:")]
    assert lines == ["interrupted: re-run the same command to resume"], stderr
    if sig == signal.SIGINT:
        return  # the same exception from here on (SIGTERM's handler raises KeyboardInterrupt): resumed once, below
    again = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    after = pd.read_parquet(run / "trials.parquet")
    assert (after["state"] == "COMPLETE").sum() == 4  # the budget is met once, nothing completed is redone
    kept = after.set_index("number").loc[done["number"], ["block_strings", "accuracy", "reward"]]
    pd.testing.assert_frame_equal(kept, done.set_index("number")[["block_strings", "accuracy", "reward"]])
