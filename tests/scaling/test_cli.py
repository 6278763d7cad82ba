"""scaling/cli.py, the `scale` command: family and grid outputs, bad input as one line and exit 2."""

from __future__ import annotations

import pandas as pd
import pytest

from scaling import family, flops_factor, load_coefficients
from search_spaces import load_arch
from tests.conftest import in_process
from tests.scaling.helpers import B0, OFFICIAL, PAPER, brute_force_grid, run_cli

# ---- the CLI ---------------------------------------------------------------------------------


def test_cli_family_pure(tmp_path):
    out = tmp_path / "fam"
    p = run_cli("family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-7", "--out", str(out))
    assert p.returncode == 0, p.stderr
    table = pd.read_parquet(out / "family.parquet")
    assert list(table.phi) == list(range(8)) and table.params[1] == OFFICIAL[2][3]
    assert pd.read_csv(out / "family.csv").macs.tolist() == table.macs.tolist()
    for phi, arch in family(B0, *PAPER):
        assert load_arch(str(out / f"efficientnet-b0-phi{phi}.yaml")) == arch
    assert "efficientnet-b0-phi7" in p.stdout and "9,109,994" in p.stdout


def scale_ok(*args: str) -> str:
    code, stdout, stderr = in_process("scale", *args)
    assert code == 0, stderr
    return stdout


def test_cli_family_preset_and_coeffs(tmp_path):
    scale_ok("family", "--preset", "efficientnet", "--out", str(tmp_path / "eff"))
    table = pd.read_parquet(tmp_path / "eff" / "family.parquet")
    assert table.params.tolist()[1:] == [OFFICIAL[i][3] for i in range(1, 8)]
    assert sorted(f.name for f in (tmp_path / "eff").glob("*.yaml"))[:2] == ["config.yaml", "efficientnet-b0.yaml"]
    coeffs = tmp_path / "c.yaml"
    coeffs.write_text("coefficients: {alpha: 1.2, beta: 1.1, gamma: 1.15}\n")
    scale_ok("family", "--coeffs", str(coeffs), "--phi", "1", "--out", str(tmp_path / "c"))
    assert pd.read_parquet(tmp_path / "c" / "family.parquet").params.tolist() == [OFFICIAL[2][3]]


def test_cli_grid(tmp_path):
    run = tmp_path / "run"
    stdout = scale_ok("grid", "--phi", "1", "--base", "efficientnet-b0", "--run", str(run), "--dry-run")
    table = pd.read_parquet(run / "grid.parquet")
    assert len(table) == len(brute_force_grid())
    assert table.distance.is_monotonic_increasing
    assert "109 points kept" in stdout and "EVALUATION" not in stdout
    assert load_arch(str(run / "base_arch.yaml")) == B0
    scale_ok("grid", "--budget", "7", "--run", str(run / "b"), "--top", "0", "--dry-run")
    assert len(pd.read_parquet(run / "b" / "grid.parquet")) == 7
    scale_ok("grid", "--budget", "2", "--dry-run", f"run={run / 'c'}")  # nas's spelling of the run directory
    assert len(pd.read_parquet(run / "c" / "grid.parquet")) == 2


@pytest.mark.parametrize(
    "args",
    [
        ["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "-1"],
        ["family", "--alpha", "0", "--beta", "1.1", "--gamma", "1.15"],
        ["family", "--alpha", "1.2", "--beta", "-1.1", "--gamma", "1.15"],
        ["grid", "--alpha-range", "1", "1.1", "--beta-range", "1", "1.1", "--gamma-range", "1", "1.1"],
        ["grid", "--phi", "2"],
        ["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--base", "no-such-net"],
        ["grid", "--base", "missing.yaml"],
        ["grid", "--base", "pyproject.toml"],
        ["family", "--coeffs", "no/such/coefficients.yaml"],
        ["family", "--alpha", "1.2"],
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, tmp_path):
    code, stdout, stderr = in_process("scale", *args, "--out" if args[0] == "family" else "--run", str(tmp_path / "o"))
    assert code == 2, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr + stdout
    assert not (tmp_path / "o").exists()


def test_cli_bad_input_in_a_subprocess(tmp_path):
    """The same, as a user's shell sees it: exit status 2, one line on stderr, nothing written."""
    p = run_cli("grid", "--base", "missing.yaml", "--run", str(tmp_path / "o"))
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith("error: "), p.stderr
    assert not (tmp_path / "o").exists()


def test_cli_in_process_edges(tmp_path, capsys):
    from scaling.cli import main

    run = tmp_path / "run"
    assert main(["grid", "--run", str(run), "--top", "3", "--dry-run"]) == 0
    assert not (run / "coefficients.yaml").exists()  # a dry run measures nothing: no result to hand on
    top = pd.read_parquet(run / "grid.parquet").iloc[0]  # the point closest to 2 feeds `scale family`
    (tmp_path / "c.yaml").write_text(f"alpha: {top.alpha}\nbeta: {top.beta}\ngamma: {top.gamma}\n")
    coeffs = load_coefficients(str(tmp_path / "c.yaml"))
    assert abs(flops_factor(*coeffs) - 2) == pd.read_parquet(run / "grid.parquet").distance.min()
    assert main(["family", "--coeffs", str(tmp_path / "c.yaml"), "--phi", "2", "--out", str(tmp_path / "f")]) == 0
    capsys.readouterr()
    for argv in (
        ["family", "--preset", "efficientnet", "--phi", "1", "--phis", "0-3"],
        ["family", "--preset", "efficientnet", "--base", "mnasnet-a1"],
        ["family", "--preset", "efficientnet", "--phi", "9"],
        ["family", "--preset", "efficientnet", "--phis", "seven"],
        ["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--coeffs", "x.yaml"],
        ["grid", "--step", "-0.05"],
        ["grid", "--top", "-1"],
    ):
        assert main([*argv, "--out" if argv[0] == "family" else "--run", str(tmp_path / "bad")]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), (argv, err)
    with pytest.raises(SystemExit) as e:
        main(["family", "--preset", "efficientnet", "--phi", "1.5"])  # argparse's own errors: also one line
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: argument --phi")
    assert not (tmp_path / "bad").exists()


def test_cli_overrides_without_training_rejected(tmp_path):
    code, _, stderr = in_process("scale", "grid", "--dry-run", "data=npz", "--run", str(tmp_path / "o"))
    assert code == 2 and stderr.startswith("error:")


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-60"], "use smaller phis"),
        (["grid", "--dry-run", "--step", "0.0001"], "10,001 values (at most 1,000)"),
        (["grid", "--dry-run", "--step", "0.002"], "points before the tolerance filter"),
    ],
)
def test_size_caps_refuse_unbounded_work(tmp_path, capsys, argv, needle):
    from scaling.cli import main

    out = tmp_path / "bad"
    assert main([*argv, "--out" if argv[0] == "family" else "--run", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err, err
    assert not out.exists()
