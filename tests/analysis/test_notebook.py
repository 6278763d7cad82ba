"""The Pareto-frontier notebook, executed headless on a real (tiny) run, as papermill would run it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import nbformat
import pytest

from tests.conftest import PYTHON, ROOT

NOTEBOOK = ROOT / "notebooks" / "pareto_frontier.ipynb"
KERNEL = "effnas-test"


def run(module: str, *args: str, cwd: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([PYTHON, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr


def private_kernel(tmp: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec that starts THIS interpreter (`sys.executable -m ipykernel_launcher`), written into a
    private JUPYTER_PATH: nothing is installed, and a stale user-level `python3` spec cannot take over."""
    from ipykernel.kernelspec import write_kernel_spec

    write_kernel_spec(tmp / "jupyter" / "kernels" / KERNEL)
    monkeypatch.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
    # the kernel inherits the environment: it imports this checkout even without an editable install
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return KERNEL


def inject_parameters(nb: nbformat.NotebookNode, source: str) -> None:
    """Insert a cell after the one tagged `parameters` (papermill's rule)."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "the notebook needs exactly one cell tagged `parameters`"
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(tagged[0] + 1, cell)


def test_notebook_is_committed_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, "clear the notebook's outputs before committing"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "RUN_DIRS" in params[0].source


@pytest.mark.slow
def test_notebook_runs_on_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from nbclient import NotebookClient

    # a project as a fresh clone has it after the quick start: notebooks/ beside experiments/<run>
    run_dir, fam = tmp_path / "experiments" / "mobile400m", tmp_path / "family"
    fast = ["trials=3", "train.epochs=1", "data.limit=200", "data.resolution=16", "verbose=0", "recheck=0"]
    run("nas.cli", "search", *fast, f"run={run_dir}", cwd=tmp_path)
    coefficients = ["--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-3"]
    run("scaling.cli", "family", *coefficients, "--out", str(fam), cwd=tmp_path)
    (tmp_path / "notebooks").mkdir()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    inject_parameters(nb, f"FAMILY = {str(fam)!r}\n")  # RUN_DIRS left at its default: the runs it finds
    client = NotebookClient(
        nb,
        kernel_name=private_kernel(tmp_path, monkeypatch),
        timeout=300,
        resources={"metadata": {"path": str(tmp_path / "notebooks")}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if any cell fails

    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    # accuracy vs MACs, vs params, progress, EfficientNet reference, family
    assert len(images) >= 5, [o.get("data", {}).keys() for c in code for o in c.outputs]
    tables = [o for c in code for o in c.outputs if "text/html" in o.get("data", {})]
    assert len(tables) >= 5


def test_notebook_default_runs_and_landscape_ranges(tmp_path: Path):
    """RUN_DIRS=None: the search runs under ../experiments, or one line saying what to do; the reward table
    spans the data (accuracies at the trials' quantiles, MACs from the cheapest trial or T/2 to 2T)."""
    from analysis import runs as analysis
    from effnas.errors import UserError
    from tests.analysis.helpers import make_run

    with pytest.raises(UserError, match="no search run with finished trials under .*nas search"):
        analysis.search_runs(tmp_path / "experiments")
    a = make_run(tmp_path / "experiments" / "a", "tpe", 0)
    make_run(tmp_path / "experiments" / "sweep" / "0", "random", 1)
    assert analysis.search_runs(tmp_path / "experiments") == [str(a), str(tmp_path / "experiments" / "sweep" / "0")]
    df = analysis.load_runs([a])
    macs, accuracy = analysis.landscape_ranges(df)
    done = analysis.completed(df)
    assert accuracy[0] == round(done["accuracy"].min(), 3) and accuracy[-1] == round(done["accuracy"].max(), 3)
    T = df["reward_T"].iloc[0]
    assert macs[0] == pytest.approx(min(done["macs"].min(), T / 2), rel=1e-3)
    assert macs[-1] == pytest.approx(max(done["macs"].max(), 2 * T), rel=1e-3)
