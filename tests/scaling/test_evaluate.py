"""scaling/evaluate.py through the `scale` command: real proxy training of grid points and family members."""

from __future__ import annotations

import signal
import subprocess
import time

import pandas as pd
import yaml

from scaling.grid import winner
from search_spaces import from_block_strings
from tests.conftest import PYTHON, ROOT
from tests.scaling.helpers import run_cli


def test_cli_grid_trains_candidates_killed_and_resumed(tmp_path):
    """Real proxy training of each kept point (tiny budget); SIGKILL after the first point is recorded: the
    rerun trains only the others, and a rerun of the finished grid trains nothing."""
    run = tmp_path / "g"
    base = tmp_path / "small.yaml"  # a small base: a point trains in about a second
    base.write_text(from_block_strings(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e4_i16_o24"], stem=16, head=64).to_yaml())
    args = ["grid", "--base", str(base), "--budget", "3", "--run", str(run), "train.epochs=2", "data.limit=300",
            "data.resolution=16", "device=cpu"]  # fmt: skip
    records = run / "evaluations.jsonl"
    proc = subprocess.Popen([PYTHON, "-m", "scaling.cli", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (records.exists() and records.read_text()):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = records.read_text().splitlines()
    assert 1 <= len(first) < 3 and not (run / "grid.parquet").exists(), "killed too late to test a resume"
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr
    table = pd.read_parquet(run / "grid.parquet")
    assert len(table) == 3 and table["accuracy"].between(0, 1).all()
    assert (table["proxy_resolution"] >= 16).all() and (table["seconds"] > 0).all()
    assert "ranked by accuracy" in p.stdout
    # progress: the two points left, each with its coefficients, k/N and (while some remain) an ETA
    assert "[1/2] alpha=" in p.stderr and "ETA" in p.stderr and "[2/2] alpha=" in p.stderr, p.stderr
    best, why = winner(table)  # a winner only beyond the validation noise; otherwise a warning and no file
    if best is None:
        assert f"warning: no winner: {why}" in p.stderr and not (run / "coefficients.yaml").exists()
    else:
        assert yaml.safe_load((run / "coefficients.yaml").read_text())["alpha"] == best["alpha"]
    after = records.read_text().splitlines()
    assert len(after) == 3 and after[: len(first)] == first  # the points done before the kill: not trained again
    p = run_cli(*args)  # the finished grid: nothing is trained again
    assert p.returncode == 0, p.stderr
    assert records.read_text().splitlines() == after
    pd.testing.assert_frame_equal(pd.read_parquet(run / "grid.parquet"), table)
    assert "data.limit" in (run / "config.yaml").read_text()


def test_cli_family_train(tmp_path):
    p = run_cli("family", "--preset", "efficientnet", "--phis", "0-1", "--out", str(tmp_path / "f"), "--train",
                "train.epochs=1", "data.limit=150", "data.resolution=16", "device=cpu")  # fmt: skip
    assert p.returncode == 0, p.stderr
    t = pd.read_parquet(tmp_path / "f" / "family.parquet")
    assert t["accuracy"].between(0, 1).all() and t["proxy_resolution"].tolist() == [16, 17]
    # the table says how each member was trained: one seed, on which device, with which recipe
    assert (t["seeds"] == 1).all() and (t["device"] == "cpu").all() and t["error"].isna().all()
    assert t["recipe"].iloc[0].startswith("1 epoch(s), batch 32") and "on digits (150 images)" in t["recipe"].iloc[0]


def test_cli_family_member_that_cannot_train_is_a_row_with_its_reason(tmp_path):
    """The memory guard refuses every member (a budget of 1 MB): each is a row with the estimate as its reason,
    nothing is cached (a rerun tries again), one `error:` line names them, exit 1."""
    out = tmp_path / "f"
    p = run_cli("family", "--preset", "efficientnet", "--phis", "0-1", "--out", str(out), "--train", "train.epochs=1",
                "train.max_memory_gb=0.001", "data.limit=150", "data.resolution=16", "device=cpu")  # fmt: skip
    assert p.returncode == 1, p.stderr
    t = pd.read_parquet(out / "family.parquet")
    assert len(t) == 2 and t["accuracy"].isna().all() and (t["seeds"] == 0).all()
    assert t["error"].str.contains("GB").all(), t["error"].tolist()
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and "2 member(s) failed" in errors[0] and "Traceback" not in p.stderr
    assert not (out / "evaluations.jsonl").exists() or not (out / "evaluations.jsonl").read_text()
