"""The package as a user gets it: a built wheel installed outside the source tree runs the default
command; `nas --help` imports nothing heavy."""

from __future__ import annotations

import os
import subprocess
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PYTHON, ROOT

HEAVY = ("torch", "optuna", "pandas", "numpy", "hydra", "omegaconf", "ray", "matplotlib", "search_spaces")


@pytest.mark.parametrize("argv", [["--help"], ["search", "--help"], []])
def test_nas_help_imports_nothing_heavy(argv: list[str]):
    code = (
        f"import sys; from nas.cli import main; rc = main({argv!r}); "
        "print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr); sys.exit(rc)"
    )
    out = subprocess.run([PYTHON, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "nas search conf=mobile400m" in out.stdout
    modules = {m.split(".")[0] for m in out.stderr.split("MODULES", 1)[1].split()}
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


@pytest.mark.slow
def test_wheel_installed_elsewhere_runs_the_default_search(tmp_path: Path):
    wheels = tmp_path / "wheels"
    subprocess.run([PYTHON, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, timeout=300)  # fmt: skip
    (whl,) = wheels.glob("effnas-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    for conf in ("mobile400m.yaml", "grid.yaml", "train.yaml", "space/mnasnet.yaml", "train/proxy.yaml",
                 "data/digits.yaml", "data/npz.yaml"):  # fmt: skip
        assert f"effnas/conf/{conf}" in names, conf
    for package in ("effnas", "search_spaces", "training", "nas", "scaling", "analysis"):
        assert f"{package}/__init__.py" in names, package
    assert not any(n.startswith("tests/") for n in names)

    # a fresh venv whose only extra path is this environment's site-packages (the dependencies);
    # the project itself comes from the wheel, not from the source tree
    venv = tmp_path / "venv"
    subprocess.run([PYTHON, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([PYTHON, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q", "--no-deps",
                    "--no-index", str(whl)], check=True, capture_output=True, timeout=300)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import effnas.conf, nas; print(nas.__file__)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(site)), where.stdout

    args = ["search", "conf=mobile400m", "trials=1", "train.epochs=1", "data.limit=100", "data.resolution=16",
            "verbose=0", "device=cpu"]  # fmt: skip
    r = subprocess.run([str(venv / "bin" / "nas"), *args], cwd=elsewhere, env=env, capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr
    runs = list((elsewhere / "experiments").iterdir())
    assert len(runs) == 1 and (runs[0] / "trials.parquet").is_file() and (runs[0] / "best_arch.yaml").is_file()
