"""End-to-end: the real `nas` command in a subprocess, asserting on the run directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from scipy import stats

from nas.reward import RewardConfig
from search_spaces import cost, from_block_strings, load_arch, preset
from tests.conftest import PYTHON, ROOT, in_process

FAST = ["train.epochs=1", "data.limit=200", "data.resolution=16", "verbose=0", "recheck=0"]
DONE = ["conf=mobile400m", "reward.T=300e6", "reward.beta=-0.5"]
"""The module's shared search: B0 (386M MACs) lies above T, so the reward's two sides differ (alpha -0.07)."""
TINY_BASE = ["r1_k3_s11_e1_i16_o16", "r2_k3_s22_e6_i16_o24"]
TINY = f"space.base=[{','.join(TINY_BASE)}]"
"""A two-stage base for the plumbing tests: a trial trains in about a second instead of B0's five."""


def nas(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [PYTHON, "-m", "nas.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith("run directory:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


@pytest.fixture(scope="module")
def done_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("search")
    fast = [a for a in FAST if not a.startswith("recheck=")]
    p = nas("search", *DONE, "trials=3", *fast, "recheck=1", f"run={tmp / 'run'}", cwd=tmp)
    assert p.returncode == 0, p.stderr
    assert "noise: 1 trial(s) trained again with another seed" in p.stdout
    return tmp / "run"


def test_search_run_directory(done_run: Path):
    names = {p.name for p in done_run.iterdir()}
    assert {"config.yaml", "study.journal", "trials.parquet", "best_arch.yaml", "log.txt"} <= names
    df = pd.read_parquet(done_run / "trials.parquet")
    assert list(df["number"]) == [0, 1, 2]
    assert (df["state"] == "COMPLETE").all()
    for col in ["s1_op", "s7_layers", "block_strings", "n_params", "macs", "accuracy", "reward", "seconds", "device"]:
        assert df[col].notna().all(), col
    # trial 0 is the enqueued base network, EfficientNet-B0
    assert df.loc[0, "block_strings"].split() == preset("efficientnet-b0").to_block_strings()
    assert df.loc[0, "macs"] == 385_814_752
    best = yaml.safe_load((done_run / "best_arch.yaml").read_text())
    assert best["reward"] == pytest.approx(df["reward"].max())
    arch = load_arch(str(done_run / "best_arch.yaml"))
    assert arch.to_block_strings() == best["block_strings"]
    cfg = yaml.safe_load((done_run / "config.yaml").read_text())
    assert cfg["reward"]["T"] == 300e6 and cfg["train"]["epochs"] == 1
    assert "note: some architectures of this space cannot be exported to timm" in (done_run / "log.txt").read_text()


def test_reward_column_is_the_papers_formula_on_each_side_of_T(done_run: Path):
    """ACC x (MACs / T)^w, w = alpha (-0.07) at or below T and beta (-0.5) above (REFERENCE.md), recomputed
    here from trials.parquet's own accuracy and MACs; and every vector decodes to its trial's choices."""
    from nas.config import compose_search

    df = pd.read_parquet(done_run / "trials.parquet")
    T, alpha, beta = 300e6, -0.07, -0.5
    w = np.where(df["macs"] <= T, alpha, beta)
    np.testing.assert_allclose(df["reward"], df["accuracy"] * (df["macs"] / T) ** w, rtol=1e-12)
    b0 = df.loc[0]
    assert b0["macs"] > T and b0["reward"] == pytest.approx(b0["accuracy"] * (b0["macs"] / T) ** beta)
    space = compose_search("mobile400m", []).space
    for _, row in df.iterrows():
        assert space.decode(list(row["vector"])) == {n: row[n] for n in space.param_names()}
        arch = from_block_strings(row["block_strings"].split())  # B0's stem and head, as the space's base
        assert cost(arch, 224, 1000).macs == row["macs"] and cost(arch, 224, 1000).params == row["n_params"]
    journal = optuna.storages.journal.JournalFileBackend(str(done_run / "study.journal"))
    study = optuna.load_study(study_name=None, storage=optuna.storages.JournalStorage(journal))
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE]
    # the study describes itself: what its value is, under which T and exponents, over which choices
    assert study.metric_names == ["reward"]
    assert study.user_attrs["reward"] == {"metric": "macs", "T": 300e6, "alpha": -0.07, "beta": -0.5,
                                          "resolution": 224, "num_classes": 1000}  # fmt: skip
    assert list(study.user_attrs["space"]) == space.param_names()
    assert study.user_attrs["config"]["trials"] == 3 and study.user_attrs["config"]["reward"]["T"] == 300e6


def test_optuna_dashboard_reads_the_run(done_run: Path):
    """optuna-dashboard (its WSGI app, as `optuna-dashboard RUN/study.journal` serves it) lists the study
    with its metric name, its reward settings and every trial."""
    import json
    from wsgiref.util import setup_testing_defaults

    import optuna_dashboard

    app = optuna_dashboard.wsgi(str(done_run / "study.journal"))

    def get(path: str) -> dict:
        env: dict = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
        setup_testing_defaults(env)
        status: list[str] = []
        body = b"".join(app(env, lambda s, headers, exc_info=None: status.append(s)))
        assert status == ["200 OK"], (status, body[:500])
        return json.loads(body)

    (summary,) = get("/api/studies")["study_summaries"]
    study = get(f"/api/studies/{summary['study_id']}")
    assert study["objective_names"] == ["reward"]
    assert json.loads({a["key"]: a["value"] for a in study["user_attrs"]}["reward"])["T"] == 300e6
    assert len(study["trials"]) == len(pd.read_parquet(done_run / "trials.parquet"))


def test_best_trial_is_trained_again_with_another_seed(done_run: Path):
    df = pd.read_parquet(done_run / "trials.parquet")
    again = df[df["recheck_reward"].notna()]
    assert again["number"].tolist() == [df.loc[df["reward"].idxmax(), "number"]]  # recheck=1: the best only
    row = again.iloc[0]
    rc = RewardConfig(T=300e6, beta=-0.5)
    assert row["recheck_reward"] == pytest.approx(rc(row["recheck_accuracy"], int(row["macs"])))
    assert 0 <= row["recheck_accuracy"] <= 1
    # kept in the Optuna storage with its seed (the run's seed + 1,000,000 + the trial number)
    journal = optuna.storages.journal.JournalFileBackend(str(done_run / "study.journal"))
    storage = optuna.storages.JournalStorage(journal)
    attrs = optuna.load_study(study_name=None, storage=storage).user_attrs
    assert attrs[f"recheck_{int(row['number'])}"]["seed"] == 1_000_000 + int(row["number"])
    # one run's sd from one pair, and which trials are inside t(1 dof) x sqrt(2) x sd of the best
    sd = abs(row["reward"] - row["recheck_reward"]) / np.sqrt(2)
    if sd == 0:  # the tiny test training may sit at chance twice: no estimate, nothing marked
        assert df["within_noise_of_best"].isna().all()
    else:
        inside = df["reward"] >= df["reward"].max() - stats.t.ppf(0.975, 1) * np.sqrt(2) * sd
        assert df["within_noise_of_best"].astype(bool).tolist() == inside.tolist()


def test_rerun_resumes_and_extends(done_run: Path, tmp_path: Path):
    before = pd.read_parquet(done_run / "trials.parquet")
    code, _, stderr = in_process("nas", "search", *DONE, "trials=3", *FAST, f"run={done_run}")
    assert code == 0, stderr
    assert "3/3 trials done, 0 to run" in (done_run / "log.txt").read_text()
    pd.testing.assert_frame_equal(pd.read_parquet(done_run / "trials.parquet"), before)
    code, _, stderr = in_process("nas", "search", *DONE, "trials=4", *FAST, f"run={done_run}")
    assert code == 0, stderr
    after = pd.read_parquet(done_run / "trials.parquet")
    assert list(after["number"]) == [0, 1, 2, 3]
    relative = ["within_noise_of_best"]  # to the best trial, which a new trial may replace
    pd.testing.assert_frame_equal(after.iloc[:3].reset_index(drop=True).drop(columns=relative),
                                  before.drop(columns=relative))  # fmt: skip


def test_show_and_export(done_run: Path, tmp_path: Path):
    def nas_ok(*args: str) -> str:
        code, stdout, stderr = in_process("nas", *args)
        assert code == 0, stderr
        return stdout

    assert "reward" in nas_ok("show", str(done_run))
    blocks = nas_ok("export", str(done_run), "--format", "blocks", "--trial", "0")
    assert blocks.split() == preset("efficientnet-b0").to_block_strings()
    assert '"ds_r1_k3_s1_e1_c16_se0.25"' in nas_ok("export", str(done_run), "--format", "timm", "--trial", "0")
    nas_ok("export", str(done_run), "--format", "yaml", "--out", str(tmp_path / "a.yaml"))
    assert load_arch(str(tmp_path / "a.yaml")).stages
    one_line_error(nas("export", str(done_run), "--trial", "99", cwd=tmp_path))  # the subprocess: exit code, stderr


def test_trials_keep_their_trained_weights_and_export_them(done_run: Path, tmp_path: Path):
    """Each trial's inference weights are kept (keep_weights=5 > 3 trials) and exported with the run's
    classes: evaluated on the run's validation split they score exactly the trial's recorded accuracy;
    ONNX of them gives onnxruntime's logits equal to torch's."""
    import onnxruntime
    import torch

    from nas import weights
    from nas.config import SearchConfig
    from training.data import load_data
    from training.trainer import evaluate_topk

    cfg = SearchConfig.from_dict(yaml.safe_load((done_run / "config.yaml").read_text()))
    df = pd.read_parquet(done_run / "trials.parquet").set_index("number")
    assert weights.kept(done_run / weights.DIR) == sorted(df.index[df["state"] == "COMPLETE"])  # 3 or 4 (extended)
    data = load_data(cfg.data, seed=cfg.seed)
    code, stdout, stderr = in_process("nas", "export", str(done_run), "--format", "pt", "--out", str(tmp_path / "m.pt"))
    assert code == 0 and "trained weights, 10 classes" in stdout, stderr
    arch, net = weights.load(tmp_path / "m.pt")
    best = int(df["reward"].idxmax())
    assert arch.to_block_strings() == df.loc[best, "block_strings"].split()
    assert net.classifier.weight.abs().sum() > 0  # trained: the recipe starts the classifier at zero
    size = cfg.train.train_size(data.name, data.resolution, arch.resolution)
    acc, _ = evaluate_topk(net, data, data.val, cfg.train.eval_batch_size, torch.device("cpu"), size,
                           cfg.train.eval_crop_fraction(data.name, size))  # fmt: skip
    assert acc == df.loc[best, "accuracy"]

    onnx_file = tmp_path / "m.onnx"
    code, _, stderr = in_process("nas", "export", str(done_run), "--trial", "1", "--format", "onnx", "--out",
                                 str(onnx_file))  # fmt: skip
    assert code == 0, stderr
    trained = weights.load(done_run / weights.DIR / "trial-00001.pt")[1]
    x = torch.randn(3, 3, 224, 224)  # another batch size than the export's
    (theirs,) = onnxruntime.InferenceSession(str(onnx_file)).run(None, {"image": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(theirs, trained(x).numpy(), rtol=1e-3, atol=1e-4)
    assert theirs.shape == (3, 10)

    code, stdout, stderr = in_process("nas", "export", str(done_run), "--format", "pt", "--untrained", "--out",
                                      str(tmp_path / "u.pt"))  # fmt: skip
    assert code == 0 and "untrained weights, 10 classes" in stdout, stderr

    program = tmp_path / "m.pt2"  # torch.export: runs without this package, at another batch size
    code, _, stderr = in_process("nas", "export", str(done_run), "--trial", "1", "--format", "pt2", "--out",
                                 str(program))  # fmt: skip
    assert code == 0, stderr
    with torch.no_grad():
        torch.testing.assert_close(torch.export.load(str(program)).module()(x), trained(x), rtol=1e-4, atol=1e-5)


def test_timm_export_loads_into_timms_efficientnet(done_run: Path, tmp_path: Path):
    """--format timm-pt of trial 0 (B0): timm's EfficientNet, built by this test from the file's spec alone,
    takes the file's state_dict (strictly) and gives the trial's trained network's logits."""
    from functools import partial

    import torch
    from timm.layers.create_act import get_act_layer
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet
    from torch import nn

    from nas import weights

    out = tmp_path / "b0.pth"
    code, _, stderr = in_process(
        "nas", "export", str(done_run), "--trial", "0", "--format", "timm-pt", "--out", str(out)
    )
    assert code == 0, stderr
    saved = torch.load(out, weights_only=True)
    spec = saved["timm"]
    bn = partial(nn.BatchNorm2d, eps=spec["bn_eps"], momentum=spec["bn_momentum"])
    peer = EfficientNet(
        block_args=decode_arch_def(spec["arch_def"]),
        num_classes=10,
        stem_size=spec["stem_size"],
        num_features=spec["num_features"],
        act_layer=get_act_layer(spec["act_layer"]),
        norm_layer=bn,
    )
    peer.load_state_dict(saved["state_dict"])
    ours = weights.load(done_run / weights.DIR / "trial-00000.pt")[1]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(peer.eval()(x), ours(x), rtol=1e-4, atol=1e-5)


def test_onnx_without_the_extra_is_one_line(done_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: its import fails
    code, _, stderr = in_process("nas", "export", str(done_run), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert code == 2 and "pip install 'effnas[onnx]'" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "m.onnx").exists()


def test_keep_weights_keeps_the_best_k_by_reward(tmp_path: Path):
    """keep_weights=1: after the run only the best trial's file is left; exporting another trial's weights
    is refused in one line naming the kept ones; keep_weights=0 writes none."""
    run = tmp_path / "r"
    code, _, stderr = in_process("nas", "search", TINY, "trials=3", *FAST, "keep_weights=1", f"run={run}")
    assert code == 0, stderr
    from nas import weights

    df = pd.read_parquet(run / "trials.parquet")
    best = int(df.loc[df["reward"].idxmax(), "number"])
    assert weights.kept(run / weights.DIR) == [best]
    other = next(n for n in df["number"] if n != best)
    code, _, stderr = in_process("nas", "export", str(run), "--trial", str(other), "--format", "pt",
                                 "--out", str(tmp_path / "x.pt"))  # fmt: skip
    assert code == 2 and f"trial {other} has no kept weights" in stderr and f": {best});" in stderr
    assert not (tmp_path / "x.pt").exists()
    code, _, stderr = in_process("nas", "search", TINY, "trials=1", *FAST, "keep_weights=0", f"run={tmp_path / 'n'}")
    assert code == 0 and not (tmp_path / "n" / weights.DIR).exists(), stderr


def test_list_and_compare_runs(done_run: Path, tmp_path: Path):
    """nas list: every run directory under a folder with its state (running while a process holds the lock)
    and best trial; nas compare: side by side, with the config keys that differ."""
    import re
    import shutil

    from effnas import rundir

    other = tmp_path / "runs" / "other"
    shutil.copytree(done_run, other)
    config = yaml.safe_load((other / "config.yaml").read_text())
    (other / "config.yaml").write_text(yaml.safe_dump({**config, "sampler": "random"}))
    df = pd.read_parquet(done_run / "trials.parquet")
    with rundir.locked(other):
        code, out, err = in_process("nas", "list", str(tmp_path / "runs"))
    assert code == 0, err
    assert re.search(r"(\d)/\1 +random .* running", out) and f"{df['reward'].max():.4g}" in out, out
    code, out, err = in_process("nas", "list", str(tmp_path / "runs"))
    assert code == 0 and " done" in out and "running" not in out, out
    code, out, err = in_process("nas", "compare", str(done_run), str(other))
    assert code == 0, err
    assert "config keys that differ:" in out and re.search(r"sampler +tpe +random", out), out
    code, _, err = in_process("nas", "compare", str(done_run), str(tmp_path))
    assert code == 2 and "not an effnas run directory" in err


def test_failed_trials_are_recorded_and_search_goes_on(tmp_path: Path):
    code, _, stderr = in_process("nas", "search", TINY, "trials=2", *FAST, "train.lr=1e12", "enqueue_base=false",
                                 f"run={tmp_path / 'r'}")  # fmt: skip
    assert code == 1, stderr  # every trial failed: the run says so and exits non-zero
    assert "all 2 finished trials failed: 2 x FloatingPointError" in stderr
    df = pd.read_parquet(tmp_path / "r" / "trials.parquet")
    assert list(df["state"]) == ["FAIL", "FAIL"]
    assert df["error"].str.contains("FloatingPointError").all()
    assert df["macs"].notna().all()  # what was known before the failure is kept


def test_workers_share_the_storage(tmp_path: Path):
    p = nas("search", TINY, "trials=4", "workers=2", *FAST, f"run={tmp_path / 'r'}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    df = pd.read_parquet(tmp_path / "r" / "trials.parquet")
    assert sorted(df["number"]) == [0, 1, 2, 3] and (df["state"] == "COMPLETE").all()
    assert df.loc[df["number"] == 0, "block_strings"].iloc[0].split() == TINY_BASE  # the base, enqueued once
    log = (tmp_path / "r" / "log.txt").read_text()  # a line per trial, whichever worker ran it, with its numbers
    for _, t in df.iterrows():
        assert (
            f"trial {t['number']} COMPLETE reward {t['reward']:.4f} accuracy {t['accuracy']:.4f} MACs {t['macs']}"
            in log
        )


@pytest.mark.parametrize(
    "extra",
    [["sampler=random"], ["sampler=nsga2", "objective=multi"],
     ["sampler=evolution", "evolution.population=2", "evolution.tournament=2"], ["sampler=local"],
     ["sampler=rl", "rl.update_every=2"]],
)  # fmt: skip
def test_samplers_and_objectives(extra, tmp_path: Path):
    """(The pruners, on a skeleton that learns so that they have something to prune: test_search_learns.py.)"""
    code, stdout, stderr = in_process("nas", "search", TINY, "trials=3", *FAST, *extra, f"run={tmp_path / 'r'}")
    assert code == 0, stderr
    df = pd.read_parquet(tmp_path / "r" / "trials.parquet")
    assert len(df) == 3 and (df["state"] == "COMPLETE").all()
    journal = optuna.storages.journal.JournalFileBackend(str(tmp_path / "r" / "study.journal"))
    study = optuna.load_study(study_name=None, storage=optuna.storages.JournalStorage(journal))
    if "objective=multi" in extra:  # maximise accuracy, minimise MACs
        assert "Pareto front" in stdout
        assert study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
        assert study.metric_names == ["accuracy", "macs"]
        assert [t.values for t in study.trials] == [[a, float(m)] for a, m in zip(df["accuracy"], df["macs"])]
    else:
        assert study.directions == [optuna.study.StudyDirection.MAXIMIZE]
        assert [t.value for t in study.trials] == pytest.approx(df["reward"].tolist())
    if "sampler=local" in extra:  # trial 1: a neighbour of B0, the only trial done; trial 2: of the better one
        assert sum(study.trials[1].params[n] != study.trials[0].params[n] for n in study.trials[0].params) == 1
        focus = study.trials[int(np.argmax([t.value for t in study.trials[:2]]))]
        assert sum(study.trials[2].params[n] != focus.params[n] for n in focus.params) == 1
    if "sampler=rl" in extra:  # every trial, the enqueued base too, with its log-probability under the controller
        assert all(t.system_attrs["rl:logp"] < 0 for t in study.trials)
    if "sampler=evolution" in extra:  # trial 2: the better of trials 0 and 1 with one choice changed
        parent = study.trials[int(np.argmax([t.value for t in study.trials[:2]]))]
        child = study.trials[2].params
        assert sum(child[n] != parent.params[n] for n in child) == 1


def test_train_command(tmp_path: Path):
    code, stdout, stderr = in_process("nas", "train", "mnasnet-a1", "train.epochs=1", "data.limit=200",
                                      "data.resolution=16", f"run={tmp_path / 't'}")  # fmt: skip
    assert code == 0, stderr
    metrics = yaml.safe_load((tmp_path / "t" / "metrics.json").read_text())
    assert 0 <= metrics["val_accuracy"] <= 1 and metrics["params"] > 0
    assert "val accuracy" in stdout


def test_run_dir_files_are_written_whole_and_readable_by_others(tmp_path: Path):
    from effnas import rundir

    target = tmp_path / "trials.parquet"
    rundir.write_table(target, pd.DataFrame({"number": [0, 1]}))
    rundir.write_yaml(tmp_path / "best_arch.yaml", {"trial": 1})
    for f in (target, tmp_path / "best_arch.yaml"):
        assert f.stat().st_mode & 0o777 == 0o644, f  # mkstemp's 0600 would hide results on a shared cluster

    def fail(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        rundir.atomic_write(target, fail)
    assert pd.read_parquet(target)["number"].tolist() == [0, 1]  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best_arch.yaml", "trials.parquet"]  # no temp left


def test_half_written_journal_record_is_repaired_on_resume(done_run: Path, tmp_path: Path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(done_run, run)
    journal = run / "study.journal"
    whole = journal.read_bytes()
    journal.write_bytes(whole + b'{"op_code": 5, "worker_id": "x", "trial_id"')  # a record cut by a kill
    code, _, stderr = in_process("nas", "search", *DONE, *FAST, "trials=4", f"run={run}")
    assert code == 0, stderr
    assert "dropped 43 bytes" in stderr
    df = pd.read_parquet(run / "trials.parquet")
    assert len(df) == 4 and df["number"].is_unique


def test_zero_cost_warm_up_enqueues_the_best_scored_of_the_pool(tmp_path: Path):
    """warmup.score=params: the two enqueued after the base are the pool's largest by the cost model (their
    recorded score is the n_params their trial measured), best first; a resume does not warm up again."""
    run = tmp_path / "r"
    args = ["search", TINY, "trials=3", *FAST, "warmup.pool=30", "warmup.top=2", "warmup.score=params", f"run={run}"]
    code, _, stderr = in_process("nas", *args)
    assert code == 0, stderr
    df = pd.read_parquet(run / "trials.parquet").set_index("number")
    journal = optuna.storages.journal.JournalFileBackend(str(run / "study.journal"))
    study = optuna.load_study(study_name=None, storage=optuna.storages.JournalStorage(journal))
    picked = [t.user_attrs.get("warmup_score") for t in study.trials]
    assert picked[0] is None and picked[1] == df.loc[1, "n_params"] and picked[2] == df.loc[2, "n_params"]
    assert picked[1] >= picked[2]
    assert study.user_attrs["warmup"]["pool"] == 30 and study.user_attrs["warmup"]["score"] == "params"
    # every other point of the pool is smaller: redraw it as the warm-up does (the run's seed, distinct archs)
    import random

    from nas.config import compose_search

    space = compose_search("mobile400m", [TINY]).space
    rng, pool, base = random.Random(0), {}, space.to_arch(space.params_of(space.base)).to_json()
    while len(pool) < 30:
        arch = space.to_arch(space.random(rng))
        if arch.to_json() != base:  # the base is trial 0 already
            pool.setdefault(arch.to_json(), cost(arch, 224, 1000).params)
    assert sorted(pool.values(), reverse=True)[:2] == picked[1:]
    code, _, stderr = in_process("nas", *[a.replace("trials=3", "trials=4") for a in args])
    assert code == 0, stderr
    study = optuna.load_study(study_name=None, storage=optuna.storages.JournalStorage(journal))
    assert sum("warmup_score" in t.user_attrs for t in study.trials) == 2 and len(study.trials) == 4
