"""`nas fidelity`: a real (tiny) study, its cache and resume, its statistics, its refusals."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from nas.fidelity import REFERENCE, compose_fidelity, run_fidelity
from search_spaces import cost, preset
from tests.conftest import PYTHON, ROOT

TINY = ["archs=3", "pool=30", "include=[efficientnet-b0]", "data.limit=200", "data.resolution=16",
        "train.epochs=1", "reference.epochs=3", "verbose=0", "device=cpu"]  # fmt: skip


@pytest.mark.slow
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
    prox = table[table["recipe"] == "proxy"].groupby("arch", sort=False)["reward"].mean().reindex(ref.index)
    row = summary.set_index("recipe").loc["proxy"]
    assert row["spearman_reward"] == pytest.approx(stats.spearmanr(prox, ref).statistic, nan_ok=True)
    assert row["seeds"] == 2 and row["archs"] == 3
    assert pd.read_csv(run / "summary.csv")["recipe"].tolist() == ["proxy", "stride8", REFERENCE]

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
    p = subprocess.run([PYTHON, "-m", "nas.cli", "fidelity", *TINY, "data.limit=300", f"run={run}"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 2 and "data.limit: 200 -> 300" in p.stderr, p.stderr
    assert (run / "evaluations.jsonl").read_text().count("\n") == 1
    assert ROOT.is_dir()
