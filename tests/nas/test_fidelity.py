"""`nas fidelity`: a real (tiny) study, its cache and resume, its statistics, its refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nas.fidelity import REFERENCE, compose_fidelity, run_fidelity
from nas.zerocost import SCORES
from search_spaces import cost, preset
from tests.conftest import in_process

TINY = ["archs=3", "pool=30", "include=[efficientnet-b0]", "data.limit=200", "data.resolution=16",
        "train.epochs=1", "reference.epochs=3", "verbose=0", "device=cpu"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")  # tiny trainings: often all at chance
def test_study_caches_resumes_and_shares_the_reference(tmp_path: Path):
    run = tmp_path / "f"
    cfg = compose_fidelity("fidelity", TINY)
    table, summary = run_fidelity(cfg, run)
    # 3 architectures x (2 proxies x 2 seeds + the reference x 1 seed)
    assert len(table) == 15 and len((run / "evaluations.jsonl").read_text().splitlines()) == 15
    assert set(table["recipe"]) == {"proxy", "stride8", REFERENCE}
    assert table["arch"].iloc[0] == "efficientnet-b0"
    b0 = table[table["arch"] == "efficientnet-b0"].iloc[0]
    assert b0["macs"] == cost(preset("efficientnet-b0")).macs  # MACs at reward.resolution, whatever the proxy
    assert table["accuracy"].between(0, 1).all() and (table["seconds"] > 0).all()
    # the summary's numbers are the rank statistics of the table's means
    ref = table[table["recipe"] == REFERENCE].groupby("arch", sort=False)["reward"].mean()
    ref_acc = table[table["recipe"] == REFERENCE].groupby("arch", sort=False)["accuracy"].mean()
    prox = table[table["recipe"] == "proxy"].groupby("arch", sort=False)["reward"].mean().reindex(ref.index)
    row = summary.set_index("recipe").loc["proxy"]
    assert row["spearman_reward"] == pytest.approx(stats.spearmanr(prox, ref).statistic, nan_ok=True)
    assert row["seeds"] == 2 and row["archs"] == 3
    scored = [f"score:{n}" for n in SCORES]
    assert pd.read_csv(run / "summary.csv")["recipe"].tolist() == ["proxy", "stride8", REFERENCE, *scored]
    # zero-cost scores: the baselines are the cost model's, each judged against the reference like a proxy
    scores = pd.read_parquet(run / "scores.parquet").pivot(index="arch", columns="score", values="value")
    assert scores.loc["efficientnet-b0", ["macs", "params"]].tolist() == [b0["macs"], b0["params"]]
    row = summary.set_index("recipe").loc["score:synflow"]
    assert row["spearman_accuracy"] == pytest.approx(
        stats.spearmanr(scores["synflow"].reindex(ref.index), ref_acc.reindex(ref.index)).statistic, nan_ok=True
    )

    # the same study again trains nothing; a new proxy trains only itself (the reference is shared)
    again, _ = run_fidelity(compose_fidelity("fidelity", TINY), run)
    pd.testing.assert_frame_equal(again, table)
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 15
    more, _ = run_fidelity(compose_fidelity("fidelity", [*TINY, "+proxies.up32={image_size: 32}"]), run)
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 15 + 6
    pd.testing.assert_frame_equal(more[more["recipe"] != "up32"].reset_index(drop=True), table)

    # a record cut by a kill is dropped and trained again, nothing else
    cache = run / "evaluations.jsonl"
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    run_fidelity(compose_fidelity("fidelity", [*TINY, "+proxies.up32={image_size: 32}"]), run)
    assert [json.loads(x)["key"] for x in cache.read_text().splitlines()][:20] == [
        json.loads(x)["key"] for x in lines[:20]
    ]
    assert len(cache.read_text().splitlines()) == 21


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["archs=2"], "archs must be >= 3"),
        (["reference.epochs=3", "reference.stride_reduction=0"], "is the reference recipe itself"),
        (["reference.epochs=2", "reference.stride_reduction=0"], "not more expensive than proxy 'proxy'"),
        (["~proxies"], "proxies is empty"),
        (["+proxies.x.optimizer=adamw"], "train.optimizer"),
        (["include=[no-such-net]"], "no-such-net"),
        (["scores=[synflow,bogus]"], "zero-cost score scores='bogus'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: list[str], message: str):
    from nas.cli import main

    assert main(["fidelity", *overrides, f"run={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("run directory")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "r").exists()


def test_other_data_is_refused_and_the_cache_kept(tmp_path: Path):
    from effnas import rundir

    run = tmp_path / "f"
    with rundir.open_run(run, dict(compose_fidelity("fidelity", TINY).source), "fidelity"):
        rundir.append_line(run / "evaluations.jsonl", json.dumps({"key": "k", "result": {}}))
    code, _, stderr = in_process("nas", "fidelity", *TINY, "data.limit=300", f"run={run}")
    assert code == 2 and "data.limit: 200 -> 300" in stderr, stderr
    assert (run / "evaluations.jsonl").read_text().count("\n") == 1


def test_successive_halving_by_hand():
    from nas.fidelity_stats import successive_halving

    # 7 curves over 9 epochs; eta 3 from 1 epoch: rung 1 keeps 7 // 3 = 2, rung 3 keeps max(1, 2 // 3) = 1
    curves = {
        "a": [0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],  # best after 1 epoch, worst after 3
        "b": [0.8, 0.5, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.2],  # survives both rungs, ends low
        "c": [0.7, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.99],  # would win at any length: stopped at epoch 1
        "d": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
        "e": [0.2] * 9,
        "f": [0.3] * 9,
        "g": [0.05] * 9,
    }
    score, trained = successive_halving(curves, 1, 3)
    assert trained == {"a": 3, "b": 9, "c": 1, "d": 1, "e": 1, "f": 1, "g": 1}
    # stopped at rung 1 by their epoch-1 value, then a (stopped at rung 3), then b, the survivor
    assert sorted(score, key=score.__getitem__) == ["g", "d", "e", "f", "c", "a", "b"]
    # too short for a rung: everyone trains to the end, ranked by the last value
    score, trained = successive_halving({k: v[:2] for k, v in curves.items()}, 2, 3)
    assert set(trained.values()) == {2} and max(score, key=score.__getitem__) == "c"


def test_summary_judges_one_run_and_halving_against_the_reference():
    from nas.fidelity_stats import summarize

    rng = np.random.default_rng(0)
    archs = [f"a{i}" for i in range(8)]
    truth = np.linspace(0.2, 0.9, 8)
    rows = []
    for name, seeds, epochs, seconds in [("proxy", 2, 3, 10.0), (REFERENCE, 1, 9, 100.0)]:
        for s in range(seeds):
            for a, t in zip(archs, truth):
                curve = list(t * np.linspace(0.5, 1.0, epochs) + rng.normal(0, 0.05, epochs))
                rows.append({"arch": a, "recipe": name, "seed": s, "accuracy": curve[-1], "reward": curve[-1],
                             "seconds": seconds, "train_images": 100 * epochs, "reward_history": curve})  # fmt: skip
    table = pd.DataFrame(rows)
    summary = summarize(table, top_k=3, eta=3, min_epochs=1).set_index("recipe")
    assert summary.index.tolist() == ["proxy", "proxy+halving", REFERENCE]
    ref = table[table["recipe"] == REFERENCE].set_index("arch")["reward"]
    proxy = table[table["recipe"] == "proxy"]
    one_run = [stats.spearmanr(g.set_index("arch")["reward"].reindex(ref.index), ref).statistic
               for _, g in proxy.groupby("seed")]  # fmt: skip
    assert summary.loc["proxy", "spearman_reward_one_run"] == pytest.approx(np.mean(one_run))
    # halving: 8 trained 1 epoch, 8 // 3 = 2 of them 3 epochs: (6 x 1 + 2 x 3) / 3 / 8 of the proxy's seconds
    assert summary.loc["proxy+halving", "seconds_per_arch"] == pytest.approx(10.0 * 12 / 24)
    assert summary.loc["proxy+halving", "compute_vs_reference"] == pytest.approx(0.05)
    assert -1 <= summary.loc["proxy+halving", "spearman_reward_one_run"] <= 1
    assert np.isnan(summary.loc["proxy+halving", "spearman_reward"])


@pytest.mark.slow
def test_workers_share_the_jobs_and_the_cache(tmp_path: Path):
    from nas.fidelity import plan

    overrides = [*TINY, "seeds=1", "~proxies.stride8", "workers=2", "scores=[]"]
    cfg = compose_fidelity("fidelity", overrides)
    table, summary = run_fidelity(cfg, tmp_path / "f")
    lines = [json.loads(x) for x in (tmp_path / "f" / "evaluations.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and len({x["key"] for x in lines}) == 6  # every training once, by one of the workers
    _, jobs = plan(cfg)
    assert [(a.name, n, s) for a, n, s in jobs] == list(zip(table["arch"], table["recipe"], table["seed"]))
    assert table["accuracy"].between(0, 1).all() and summary["recipe"].tolist() == ["proxy", REFERENCE]
