"""scaling/evaluate.py through the `scale` command: real proxy training of grid points and family members."""

from __future__ import annotations

import pandas as pd

from tests.scaling.helpers import run_cli


def test_cli_grid_trains_candidates_and_resumes(tmp_path):
    """Real proxy training of each kept point (tiny budget), then a re-run reuses the evaluations."""
    run = tmp_path / "g"
    args = ["grid", "--budget", "2", "--run", str(run), "train.epochs=1", "data.limit=150", "data.resolution=16",
            "device=cpu"]  # fmt: skip
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr
    table = pd.read_parquet(run / "grid.parquet")
    assert len(table) == 2 and table["accuracy"].between(0, 1).all()
    assert (table["proxy_resolution"] >= 16).all() and (table["seconds"] > 0).all()
    assert "ranked by accuracy" in p.stdout
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 2
    p = run_cli(*args)  # resumable: nothing is trained again
    assert p.returncode == 0, p.stderr
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(run / "grid.parquet"), table)
    assert "data.limit" in (run / "config.yaml").read_text()


def test_cli_family_train(tmp_path):
    p = run_cli("family", "--preset", "efficientnet", "--phis", "0-1", "--out", str(tmp_path / "f"), "--train",
                "train.epochs=1", "data.limit=150", "data.resolution=16", "device=cpu")  # fmt: skip
    assert p.returncode == 0, p.stderr
    t = pd.read_parquet(tmp_path / "f" / "family.parquet")
    assert t["accuracy"].between(0, 1).all() and t["proxy_resolution"].tolist() == [16, 17]
