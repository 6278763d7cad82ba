"""The conventions of the `nas` command line: Hydra's flags (--help, --cfg, --dry-run, -m sweeps), shell
completion, the default run directory."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import yaml

from search_spaces import cost, preset
from tests.conftest import in_process
from tests.nas.test_cli import FAST, TINY


def test_hydra_conventions_help_cfg_dry_run(tmp_path: Path):
    """--help lists the config groups; --cfg job prints the composed config; --dry-run says what a search
    would do (B0's cost at the target as fvcore-checked cost() counts it); neither writes anything."""
    from nas.config import compose_search

    code, out, _ = in_process("nas", "search", "--help")
    assert code == 0 and "data: cifar10, digits, imagefolder, npz" in out and "space: mnasnet, timm" in out
    run = tmp_path / "never"
    code, out, err = in_process("nas", "search", "trials=7", "space=timm", f"run={run}", "--cfg", "job")
    assert code == 0, err
    assert yaml.safe_load(out) == yaml.safe_load(yaml.safe_dump(dict(compose_search("mobile400m", [
        "trials=7", "space=timm", f"run={run}"]).source)))  # fmt: skip
    code, out, err = in_process("nas", "search", "trials=7", f"run={run}", "--dry-run")
    assert code == 0, err
    b0 = cost(preset("efficientnet-b0"), 224, 1000)
    assert f"run directory: {run} (new)" in out and f"{b0.macs / 1e6:.1f}M MACs" in out and "7 trials" in out
    assert not run.exists()


def test_shell_completion_completes_commands_groups_and_keys(tmp_path: Path):
    """`nas --shell-completion` is a bash script; bash, asked as it would ask at a Tab (COMP_LINE, COMP_POINT,
    '=' a word break), gets the subcommand, a group's option (only the part after '=') and a config key."""
    code, script, err = in_process("nas", "--shell-completion")
    assert code == 0, err
    (tmp_path / "nas.bash").write_text(script)
    probe = (f"source {tmp_path / 'nas.bash'}; t() {{ COMP_LINE=\"$1\"; COMP_POINT=${{#1}}; _nas_complete; "
             "echo \"${COMPREPLY[*]}\"; }; "
             "t 'nas se'; t 'nas search data=n'; t 'nas search trials=5 reward.a'")  # fmt: skip
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30)
    assert out.stdout.splitlines() == ["search", "npz", "reward.alpha="], out


def test_multirun_sweeps_each_job_into_its_own_run_directory(tmp_path: Path):
    """-m sampler=random,tpe: two jobs, run=DIR/0 and DIR/1, each a complete search with its own sampler."""
    run = tmp_path / "m"
    code, out, err = in_process("nas", "search", "-m", TINY, "sampler=random,tpe", "trials=1", *FAST, f"run={run}")
    assert code == 0, err
    assert "job 0 (sampler=random) exit 0; job 1 (sampler=tpe) exit 0" in out
    for i, sampler in enumerate(["random", "tpe"]):
        assert yaml.safe_load((run / str(i) / "config.yaml").read_text())["sampler"] == sampler
        assert len(pd.read_parquet(run / str(i) / "trials.parquet")) == 1


def test_default_run_dir_is_deterministic(tmp_path: Path):
    from effnas.config import default_run_dir
    from nas.config import RESUME_MAY_CHANGE

    a = default_run_dir("mobile400m", ["sampler=random", "trials=5"], RESUME_MAY_CHANGE)
    assert a == default_run_dir("mobile400m", ["trials=9", "sampler=random", "ray.max_concurrent=3"], RESUME_MAY_CHANGE)
    assert a != default_run_dir("mobile400m", ["sampler=tpe"], RESUME_MAY_CHANGE)
    assert default_run_dir("mobile400m", [], RESUME_MAY_CHANGE) == Path("experiments/mobile400m")
