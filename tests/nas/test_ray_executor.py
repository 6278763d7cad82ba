"""executor=ray on real local Ray clusters bound to loopback (never `ray stop`)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from nas import weights
from nas.results import TRIAL_COLUMNS
from search_spaces import load_space, preset
from tests.conftest import PYTHON, ROOT

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]  # one Ray test at a time (scripts/test.sh)
FAST = ["train.epochs=1", "data.limit=200", "data.resolution=16", "verbose=0", "recheck=0"]
ENV = {
    **os.environ,
    "PYTHONPATH": str(ROOT),
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def nas(*args: str, cwd: Path, timeout: float = 400, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "nas.cli", *args], cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout
    )


def expected_columns() -> list[str]:
    names = load_space(str(ROOT / "effnas" / "conf" / "space" / "mnasnet.yaml")).param_names()
    return TRIAL_COLUMNS[:2] + names + TRIAL_COLUMNS[2:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_search_joins_the_given_cluster_and_writes_the_local_run_directory(tmp_path: Path):
    """`ray.address=host:port`: the run's driver and its trials ran on that cluster (their logs are in the
    cluster's own temp dir), the cluster is left running, and the run directory is the local executor's."""
    port = _free_port()
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths have a length limit
    # Ray >= 2.59 authenticates clients of a `ray start` cluster: share one token.
    env = {**ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    ray_bin = str(Path(sys.executable).parent / "ray")
    head = subprocess.Popen(
        [ray_bin, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}", "--block"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    run = tmp_path / "r"
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not list(temp.glob("session_*/logs/raylet.out")):  # the head is up
            time.sleep(0.5)
        driver = subprocess.Popen(
            [PYTHON, "-m", "nas.cli", "search", "executor=ray", f"ray.address=127.0.0.1:{port}", "trials=2",
             "ray.max_concurrent=2", "ray.asha=true", "keep_weights=1", *FAST, f"run={run}"],
            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        _, stderr = driver.communicate(timeout=400)
        assert driver.returncode == 0, stderr[-3000:]
        assert head.poll() is None  # the run left the cluster running
        logs = next(temp.glob("session_*/logs"))
        assert list(logs.glob(f"python-core-driver-*_{driver.pid}.log")), "the run's driver did not join"
        trial_pids = {json.loads(r.read_text().splitlines()[-1])["pid"] for r in (run / "ray").rglob("result.json")}
        assert len(trial_pids) >= 1
        for pid in trial_pids:  # each trial ran in one of this cluster's workers
            assert list(logs.glob(f"python-core-worker-*_{pid}.log")), pid
    finally:
        _stop_cluster(head, port, temp)
    names = {x.name for x in run.iterdir()}
    assert {"config.yaml", "study.journal", "trials.parquet", "best_arch.yaml", "log.txt"} <= names
    df = pd.read_parquet(run / "trials.parquet")
    assert list(df.columns) == expected_columns()
    assert sorted(df["number"]) == [0, 1] and (df["state"] == "COMPLETE").all()
    for col in ("macs", "n_params", "accuracy", "reward", "block_strings", "device"):
        assert df[col].notna().all(), col
    assert df.loc[df["number"] == 0, "block_strings"].iloc[0].split() == preset("efficientnet-b0").to_block_strings()
    # the Ray trials wrote their weights into the run directory; the best one's is kept (keep_weights=1)
    assert weights.kept(run / weights.DIR) == [int(df.loc[df["reward"].idxmax(), "number"])]
    # same directory, local executor, one more trial: the formats are one
    p = nas("search", "trials=3", *FAST, f"run={run}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    assert sorted(pd.read_parquet(run / "trials.parquet")["number"]) == [0, 1, 2]


def _stop_cluster(head: subprocess.Popen, port: int, temp: Path) -> None:
    """Stop only the cluster this test started (`ray start --block`, its daemons and workers): SIGKILL, as
    a graceful `ray start` shutdown takes half a minute; then its temp dir goes."""
    ours = [psutil.Process(head.pid)] if head.poll() is None else []
    ours += [c for p in ours for c in p.children(recursive=True)]
    mine = (f"127.0.0.1:{port}", str(temp))
    ours += [p for p in psutil.process_iter(["cmdline"]) if any(m in " ".join(p.info["cmdline"] or []) for m in mine)]
    for p in ours:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(ours, timeout=30)
    head.wait(timeout=30)
    shutil.rmtree(temp, ignore_errors=True)


def test_worker_killed_mid_trial_is_retried_and_completes(tmp_path: Path):
    """On a cluster the run starts itself (ray.address null): the worker process running a trial (Ray's
    `ray::ImplicitFunc.train`) is SIGKILLed a second into its training; the trial is restarted in another
    worker and completes; nothing is recorded as failed."""
    run = tmp_path / "r"
    args = ["search", "executor=ray", "trials=2", "ray.max_concurrent=1", "ray.max_failures=2", "ray.num_cpus=2",
            "train.epochs=6", "data.limit=300", "data.resolution=16", "verbose=0", f"run={run}"]  # fmt: skip
    err = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen([PYTHON, "-m", "nas.cli", *args], cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
    killed, deadline = None, time.time() + 300
    while killed is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        with contextlib.suppress(psutil.NoSuchProcess):
            for p in psutil.Process(proc.pid).children(recursive=True):  # the cluster this run started
                with contextlib.suppress(psutil.NoSuchProcess):
                    if p.name() == "ray::ImplicitFunc.train" and time.time() - p.create_time() > 1.0:
                        p.kill()
                        killed = p.pid
                        break
    assert killed is not None, "no Ray trial worker seen"
    assert proc.wait(timeout=400) == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    df = pd.read_parquet(run / "trials.parquet")
    assert sorted(df["number"]) == [0, 1]
    assert (df["state"] == "COMPLETE").all() and df["accuracy"].notna().all(), df[["state", "error"]]
    finals = [json.loads(r.read_text().splitlines()[-1]) for r in (run / "ray" / "tune").glob("*/result.json")]
    assert len(finals) == 2 and all(f["training_iteration"] == 6 and f["pid"] != killed for f in finals)


def test_scale_grid_on_ray(tmp_path: Path):
    run = tmp_path / "g"
    cmd = [PYTHON, "-m", "scaling.cli", "grid", "--budget", "2", "--run", str(run), "executor=ray", "ray.num_cpus=2",
           "train.epochs=1", "data.limit=150", "data.resolution=16", "device=cpu"]  # fmt: skip
    p = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    table = pd.read_parquet(run / "grid.parquet")
    assert len(table) == 2 and table["accuracy"].between(0, 1).all()
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 2


def test_fidelity_on_ray_fills_the_same_cache_as_local(tmp_path: Path):
    run = tmp_path / "f"
    tiny = ["archs=3", "pool=30", "include=[efficientnet-b0]", "data.limit=200", "data.resolution=16", "seeds=1",
            "train.epochs=1", "reference.epochs=3", "~proxies.stride8", "verbose=0", "device=cpu"]  # fmt: skip
    p = nas("fidelity", *tiny, "executor=ray", "ray.num_cpus=2", f"run={run}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    records = [json.loads(x) for x in (run / "evaluations.jsonl").read_text().splitlines()]
    assert len(records) == 6 and len({r["key"] for r in records}) == 6  # 3 archs x (proxy + reference), once each
    table = pd.read_parquet(run / "fidelity.parquet")
    assert table["accuracy"].between(0, 1).all() and (table["device"] == "cpu").all()
    # the local executor on the same directory finds every training cached
    p = nas("fidelity", *tiny, f"run={run}", cwd=tmp_path)
    assert p.returncode == 0 and len((run / "evaluations.jsonl").read_text().splitlines()) == 6, p.stderr[-2000:]
    assert "6 cached, 0 to run" in (run / "log.txt").read_text()


def test_family_on_ray_killed_after_a_member_resumes_training_each_member_once(tmp_path: Path):
    """`scale family --train executor=ray`: a 3-member family of a small skeleton trained as parallel Ray
    tasks; the command and the cluster it started are SIGKILLed as soon as the first member is recorded;
    the rerun trains only the others, each member exactly once, and the table is complete."""
    from search_spaces import from_block_strings

    base = tmp_path / "small.yaml"
    base.write_text(from_block_strings(["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e4_i16_o24"], stem=16, head=64).to_yaml())
    out = tmp_path / "f"
    cmd = [PYTHON, "-m", "scaling.cli", "family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis",
           "0-2", "--base", str(base), "--out", str(out), "--train", "executor=ray", "ray.num_cpus=2",
           "train.epochs=4", "data.limit=300", "data.resolution=16", "device=cpu"]  # fmt: skip
    records = out / "evaluations.jsonl"
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    tree: list[psutil.Process] = []
    while time.time() < deadline and proc.poll() is None and not (records.exists() and records.read_text()):
        with contextlib.suppress(psutil.NoSuchProcess):
            tree = psutil.Process(proc.pid).children(recursive=True)  # the cluster this run started
        time.sleep(0.1)
    for p in [psutil.Process(proc.pid), *tree] if proc.poll() is None else tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    proc.wait()
    psutil.wait_procs(tree, timeout=30)
    first = records.read_text().splitlines()
    assert 1 <= len(first) < 3, "killed too late to test a resume"
    p = subprocess.run(cmd, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    after = records.read_text().splitlines()
    assert after[: len(first)] == first and len(after) == 3  # the member(s) done before the kill: not again
    assert len({json.loads(line)["key"] for line in after}) == 3  # each member once
    table = pd.read_parquet(out / "family.parquet")
    assert table["phi"].tolist() == [0, 1, 2] and table["accuracy"].between(0, 1).all() and (table["seeds"] == 1).all()
