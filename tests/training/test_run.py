"""training/run.py, i.e. `nas train`: resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import torch

from tests.conftest import PYTHON, ROOT, in_process
from tests.training.helpers import _tiny_arch


def nas(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([PYTHON, "-m", "nas.cli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


# ---- the command: resume after SIGKILL, bad input -----------------------------------------
EPOCHS = 6
RESUME = ["train=efficientnet", f"train.epochs={EPOCHS}", "train.batch_size=32", "train.warmup_epochs=1",
          "train.augment_chunk=8", "data.limit=400", "data.resolution=16", "verbose=0"]  # fmt: skip


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path):
    arch = tmp_path / "tiny.yaml"
    arch.write_text(_tiny_arch().to_yaml())
    full = tmp_path / "full"
    p = nas("train", str(arch), *RESUME, f"run={full}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "warning: BN momentum 0.01" in p.stderr  # 60 steps at TF's 0.99: statistics cannot settle
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [PYTHON, "-m", "nas.cli", "train", str(arch), *RESUME, f"run={killed}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (killed / "checkpoint.pt").exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(killed / "checkpoint.pt", weights_only=True)
    assert 1 <= state["result"]["epochs"] < EPOCHS, "killed too late to test a resume"
    assert not (killed / "metrics.json").exists()
    p = nas("train", str(arch), *RESUME, f"run={killed}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (full, killed))
    assert b["resumed_after_epoch"] == state["result"]["epochs"] and a["resumed_after_epoch"] is None
    for key in ("epochs", "steps", "final_lr", "val_history", "val_accuracy", "val_top5", "val_accuracy_without_ema"):
        assert a[key] == b[key], key
    wa, wb = (torch.load(d / "model.pt", weights_only=True)["state_dict"] for d in (full, killed))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-5, atol=1e-6, msg=k)
    # `nas export` takes a train run's model.pt as it takes a search trial's weights (ONNX checked by onnxruntime)
    code, stdout, stderr = in_process("nas", "export", str(full), "--format", "onnx", "--out", str(tmp_path / "t.onnx"))
    assert code == 0 and "trained weights, 10 classes" in stdout, stderr
    code, stdout, _ = in_process("nas", "export", str(full), "--format", "blocks")
    assert stdout.split() == _tiny_arch().to_block_strings()


def test_another_architecture_is_refused_in_a_train_run(tmp_path: Path):
    """(The recipe's bad values are cases of the fault table, tests/effnas/faults.py.)"""
    arch = tmp_path / "tiny.yaml"
    arch.write_text(_tiny_arch().to_yaml())
    base = [str(arch), "train=efficientnet", "train.epochs=1", "data.limit=200", "data.resolution=16", "verbose=0"]
    run = tmp_path / "r"
    assert in_process("nas", "train", *base, f"run={run}")[0] == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    code, _, err = in_process("nas", "train", "mnasnet-a1", *base[1:], f"run={run}")
    assert code == 2 and err.count("\n") == 1 and "another architecture" in err, err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
