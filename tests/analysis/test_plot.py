"""analysis/plot.py, i.e. `nas plot` (real command, subprocess), on hand-made run directories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from analysis.plot import plot_command
from tests.analysis.helpers import make_run
from tests.conftest import PYTHON, ROOT, in_process

# ---------------------------------------------------------------- nas plot


def nas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [PYTHON, "-m", "nas.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )  # fmt: skip


def family_dir(path: Path, accuracy: bool = False) -> Path:
    from scaling.family import family, family_table, pure_multipliers
    from search_spaces import preset

    b0 = preset("efficientnet-b0")
    table = family_table(family(b0, 1.2, 1.1, 1.15, range(4)), b0, pure_multipliers(1.2, 1.1, 1.15, range(4)))
    if accuracy:
        table["accuracy"] = [0.77, 0.79, 0.80, 0.81]
    path.mkdir(parents=True)
    table.to_parquet(path / "family.parquet", index=False)
    return path


def assert_images(out: Path, stems: list[str]) -> None:
    for stem in stems:
        png, svg = out / f"{stem}.png", out / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert "<svg" in svg.read_text()[:2000], svg


RUN_FIGURES = ["accuracy_vs_macs", "accuracy_vs_params", "progress"]
FAMILY_FIGURES = ["family", "efficientnet_reference"]


def test_nas_plot_runs_and_family(tmp_path: Path):
    a, b = make_run(tmp_path / "tpe", "tpe", 0), make_run(tmp_path / "random", "random", 1)
    fam = family_dir(tmp_path / "fam")
    p = nas("plot", str(a), str(b), "--family", str(fam), cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert_images(a / "plots", RUN_FIGURES + FAMILY_FIGURES)  # default --out: the first RUN/plots
    assert len(p.stdout.split()) == 2 * len(RUN_FIGURES + FAMILY_FIGURES)


def test_plot_command_out_family_file_and_accuracy(tmp_path: Path):
    fam = family_dir(tmp_path / "fam", accuracy=True)
    written = plot_command([], out=tmp_path / "figs", family=fam / "family.parquet")
    assert_images(tmp_path / "figs", FAMILY_FIGURES)
    assert len(written) == 4
    assert_images(Path(plot_command([], family=fam)[0]).parent, FAMILY_FIGURES)  # default: FAMILY/plots
    assert (fam / "plots").is_dir()


def one_line_error(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr
    return lines[0]


def test_nas_plot_on_missing_or_empty_run_is_one_error_line(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    assert "does not exist" in one_line_error(nas("plot", str(tmp_path / "missing"), cwd=tmp_path))  # a subprocess
    code, _, err = in_process("nas", "plot", str(tmp_path / "empty"))
    assert code == 2 and err.count("\n") == 1 and "not an effnas run directory" in err, err
    assert not (tmp_path / "empty" / "plots").exists()


@pytest.mark.parametrize(
    "args, message",
    [(["{tmp}/fresh"], "no trials.parquet"), ([], "nothing to plot"), (["--family", "{tmp}/empty"], "no family")],
)
def test_nas_plot_user_errors_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str], args, message):
    from nas.cli import main

    (tmp_path / "empty").mkdir()
    make_run(tmp_path / "fresh", "tpe", 0, with_trials=False)
    assert main(["plot", *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err


def test_accuracy_figure_marks_best_and_base_and_keeps_every_label_inside(tmp_path: Path):
    """Two runs: a front per run, each run's best trial and base network marked, trial numbers on request;
    every drawn text (ticks, contour labels, T, legend, numbers) lies inside the figure."""
    from matplotlib.text import Text

    from analysis.plot import fig_accuracy_vs_cost
    from analysis.runs import load_runs

    df = load_runs([make_run(tmp_path / "tpe", "tpe", 0), make_run(tmp_path / "random", "random", 1)])
    df["is_base"] = df["number"] == 0
    fig = fig_accuracy_vs_cost(df, "macs", labels=True)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    box = fig.bbox
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()  # tick labels in view (matplotlib skips the others)
    ticks = [t for t in ax.xaxis.get_ticklabels(which="both") if x0 <= t.get_position()[0] <= x1]
    ticks += [t for t in ax.yaxis.get_ticklabels() if y0 <= t.get_position()[1] <= y1]
    drawn = [*ticks, *ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label, *fig.legends[0].get_texts()]
    texts = [t for t in drawn if isinstance(t, Text) and t.get_visible() and t.get_text()]
    for t in texts:
        e = t.get_window_extent(renderer)
        assert box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and box.y0 - 1 <= e.y0 and e.y1 <= box.y1 + 1, t.get_text()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "best trial (reward)" in legend and "base network (trial 0)" in legend
    assert sum(label.startswith("Pareto front of") for label in legend) == 2
    assert {"0", "1", "3"} <= {t.get_text() for t in texts}  # completed trials' numbers (2 pruned, 5 failed)


def test_reference_figure_draws_a_trained_family_against_macs(tmp_path: Path):
    """A family table with accuracies: its accuracy against its MACs (and params), beside the paper's B0..B7."""
    from analysis import runs
    from analysis.plot import fig_efficientnet_reference

    fam = runs.load_family(family_dir(tmp_path / "fam", accuracy=True))
    fig = fig_efficientnet_reference(fam)
    for ax in fig.axes[2:]:  # the twin axes, one per panel
        (line,) = ax.get_lines()
        assert list(line.get_ydata()) == pytest.approx([77, 79, 80, 81])
        assert list(line.get_xdata()) in (list(fam["macs"]), list(fam["params"]))
