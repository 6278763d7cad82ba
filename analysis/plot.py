"""Figures for run directories and model families (matplotlib, Agg; no pyplot state).

Each `fig_*` function returns a `matplotlib.figure.Figure`; `save` writes it as
PNG and SVG; `plot_command` is `nas plot`. The data come from `analysis.runs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from analysis import runs as analysis
from effnas.errors import UserError

FORMATS = ("png", "svg")
COST_LABEL = {
    "macs": "MACs (multiply-adds, log scale)",
    "n_params": "parameters (log scale)",
    "latency_ms": "predicted latency (ms, log scale)",
}


def si(x: float, _pos: object = None) -> str:
    """400e6 -> '400M', 1.5e9 -> '1.5G', 5.3e6 -> '5.3M' (tick labels and titles)."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def _target(t: float, cost: str) -> str:
    return f"{t:g} ms" if cost == "latency_ms" else si(t)


def new_figure(width: float = 7.0, height: float = 4.8, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _log_axis(ax: Axes, lo: float, hi: float, which: str = "x") -> None:
    """Log axis over [lo, hi] with SI tick labels, denser the narrower the range."""
    decades = math.log10(hi / lo)
    if decades > 4:
        subs: tuple[float, ...] = (1.0,)
    elif decades > 1.6:
        subs = (1.0, 2.0, 5.0)
    elif decades > 0.8:
        subs = (1.0, 2.0, 3.0, 5.0)
    else:
        subs = tuple(np.arange(1.0, 10.0))
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(np.arange(1.0, 10.0))))
    axis.set_major_formatter(FuncFormatter(si))
    axis.set_minor_formatter(NullFormatter())


def _padded(lo: float, hi: float, frac: float = 0.08, log: bool = False, min_span: float = 0.0) -> tuple[float, float]:
    if log:
        a, b = _padded(math.log10(lo), math.log10(hi), frac)
        return 10**a, 10**b
    mid, span = (lo + hi) / 2, max(hi - lo, min_span)
    return mid - span * (0.5 + frac), mid + span * (0.5 + frac)


PERCENT = FuncFormatter(lambda v, _pos: f"{round(v, 6):g}%")
"""Tick labels for values already in percent: 80 -> '80%', 12.5 -> '12.5%'."""


def _run_label(run: str, sampler: object) -> str:
    return f"{run} ({sampler})" if sampler and sampler != run else str(run)


def _colors(runs: Sequence[str]) -> dict[str, str]:
    """One colour per run, in load order, so a run has the same colour on every figure."""
    return {r: f"C{i % 10}" for i, r in enumerate(dict.fromkeys(map(str, runs)))}


def fig_accuracy_vs_cost(df: pd.DataFrame, cost: str = "macs", contours: bool = True, labels: bool = False) -> Figure:
    """Accuracy (%) vs MACs or params (log x) of every completed trial, each run's Pareto front, its best
    trial (by reward) and its base network (trial 0) marked, and for MACs the target T of each run and
    iso-reward lines for the first run's (T, alpha, beta). `labels`: each point's trial number."""
    done = analysis.completed(df)
    if done.empty:
        raise UserError("no completed trial to plot")
    fig, (ax,) = new_figure(7.0, 5.6)
    color = _colors(df["run"])
    settings = analysis.reward_settings(done) if "reward_T" in done.columns else pd.DataFrame()
    targets = [t for t in settings.get("reward_T", []) if np.isfinite(t)] if cost == analysis.cost_column(done) else []

    x_lo, x_hi = float(done[cost].min()), float(done[cost].max())
    if targets:  # show the neighbourhood of the target, where the reward bends
        x_lo, x_hi = min(x_lo, min(targets) / 2), max(x_hi, max(targets) * 2)
    x_lo, x_hi = _padded(x_lo, x_hi, log=True)
    acc = done["accuracy"].astype(float)
    y_lo, y_hi = _padded(float(acc.min()), float(acc.max()), frac=0.15, min_span=0.04)
    y_lo, y_hi = max(y_lo, 0.0), min(y_hi, 1.0)

    handles: list[Line2D] = []
    if contours and targets:
        first = settings.iloc[0]
        T, a, b = float(first["reward_T"]), float(first["reward_alpha"]), float(first["reward_beta"])
        grid = analysis.reward_landscape(
            T, a, b, macs=np.geomspace(x_lo, x_hi, 120), accuracy=np.linspace(y_lo, y_hi, 80)
        )
        levels = MaxNLocator(nbins=8).tick_values(float(grid.to_numpy().min()), float(grid.to_numpy().max()))
        cs = ax.contour(grid.columns, grid.index * 100, grid.to_numpy(), levels=levels, colors="0.6", linewidths=0.8)
        ax.clabel(cs, fmt=lambda v: f"{v:.3g}", fontsize=7, inline_spacing=2)
        wlabel = f"\u03b1=\u03b2={a:g}" if a == b else f"\u03b1={a:g}, \u03b2={b:g}"
        handles.append(Line2D([], [], color="0.6", lw=0.8, label=f"iso-reward (T={_target(T, cost)}, {wlabel})"))

    several = done["run"].nunique() > 1
    for run, g in done.groupby("run", sort=False):
        c = color[str(run)]
        ax.scatter(g[cost], g["accuracy"] * 100, s=22, color=c, alpha=0.75, lw=0)
        label = _run_label(str(run), g["sampler"].iloc[0])
        handles.append(Line2D([], [], ls="", marker="o", color=c, label=f"{label}: {len(g)} trials"))
        front = analysis.pareto_front(g, cost=cost)  # one front per run: fronts of different runs differ
        line = c if several else "k"
        xs = [*front[cost], x_hi]
        ys = [*(front["accuracy"] * 100), float(front["accuracy"].iloc[-1]) * 100]
        ax.step(xs, ys, where="post", color=line, lw=1.2, zorder=3)
        ax.scatter(front[cost], front["accuracy"] * 100, s=40, facecolor="none", edgecolor=line, lw=1.2, zorder=4)
        points = f"{len(front)} point{'s' if len(front) != 1 else ''}"
        what = f"Pareto front of {label}" if several else "Pareto front"
        handles.append(Line2D([], [], color=line, marker="o", mfc="none", label=f"{what} ({points})"))
        best = g.loc[g["reward"].astype(float).idxmax()]
        ax.scatter([best[cost]], [best["accuracy"] * 100], s=150, marker="*", color=c, edgecolor="k", lw=0.8,
                   zorder=6)  # fmt: skip
        base = g[g["is_base"]] if "is_base" in g.columns else g.iloc[:0]
        ax.scatter(base[cost], base["accuracy"] * 100, s=70, marker="D", facecolor="none", edgecolor=c, lw=1.5,
                   zorder=5)  # fmt: skip
        if labels:
            for _, row in g.iterrows():
                ax.annotate(str(int(row["number"])), (row[cost], row["accuracy"] * 100), xytext=(3, 3),
                            textcoords="offset points", fontsize=6, color=c, annotation_clip=True)  # fmt: skip
    handles.append(Line2D([], [], ls="", marker="*", ms=10, color="0.4", mec="k", label="best trial (reward)"))
    if "is_base" in done.columns and done["is_base"].any():
        handles.append(Line2D([], [], ls="", marker="D", mfc="none", mec="0.3", label="base network (trial 0)"))

    for i, t in enumerate(targets):
        ax.axvline(t, color="C3", ls="--", lw=1.2, zorder=2)
        ax.annotate(
            f"T = {_target(t, cost)}", (t, 1), xycoords=("data", "axes fraction"), xytext=(3, -3),
            textcoords="offset points", va="top", color="C3", fontsize=8,
        )  # fmt: skip
        if i == 0:
            handles.append(Line2D([], [], color="C3", ls="--", label="target T (reward.T)"))

    _log_axis(ax, x_lo, x_hi)
    ax.set_ylim(y_lo * 100, y_hi * 100)
    ax.yaxis.set_major_formatter(PERCENT)
    ax.set_xlabel(COST_LABEL.get(cost, cost))
    ax.set_ylabel("accuracy (proxy validation)")
    what = {"macs": "MACs", "latency_ms": "predicted latency"}.get(cost, "parameters")
    ax.set_title(f"Accuracy vs {what}: completed trials and Pareto front")
    ax.grid(True, which="major", alpha=0.3)
    fig.legend(handles=handles, fontsize=8, loc="outside lower center", ncols=2, frameon=False)
    return fig


def fig_progress(df: pd.DataFrame) -> Figure:
    """Best reward so far by trial number, one line per run labelled by sampler (each trial as a dot)."""
    prog = analysis.best_so_far(df)
    if prog["best"].notna().sum() == 0:
        raise UserError("no completed trial with a reward to plot")
    fig, (ax,) = new_figure()
    color = _colors(df["run"])
    styles = ("-", "--", ":", "-.")
    for i, (run, g) in enumerate(prog.groupby("run", sort=False)):
        c, label = color[str(run)], _run_label(str(run), g["sampler"].iloc[0])
        ax.step(g["number"], g["best"], where="post", color=c, lw=1.8, ls=styles[i % len(styles)], label=label)
        ok = g[g["state"] == "COMPLETE"]
        ax.scatter(ok["number"], ok["reward"], s=14, color=c, alpha=0.4, lw=0)
    ax.scatter([], [], s=14, color="0.5", alpha=0.6, label="one trial's reward")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.3g}"))
    ax.set_xlabel("trial number")
    ax.set_ylabel("best reward so far  (ACC \u00b7 (MACs/T)^w)")
    ax.set_title("Search progress")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return fig


def fig_family(table: pd.DataFrame, paper: bool = True) -> Figure:
    """A model family: MACs (and accuracy, if the table has it) vs phi; MACs ratio vs 2^phi (log-log)."""
    fig, (ax, ax2) = new_figure(11.0, 4.5, ncols=2)
    t = table.sort_values("phi")
    ax.plot(t["phi"], t["macs"], "o-", color="C0", label="family MACs")
    if paper:
        ref = analysis.EFFICIENTNET_PAPER
        ax.plot(ref["phi"], ref["flops"], "s--", color="0.55", ms=4, label="EfficientNet B0..B7 (paper FLOPs)")
    ys = [*t["macs"], *(analysis.EFFICIENTNET_PAPER["flops"] if paper else [])]
    _log_axis(ax, *_padded(float(min(ys)), float(max(ys)), log=True), which="y")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("phi (compound coefficient)")
    ax.set_ylabel("MACs (multiply-adds, log scale)")
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if "accuracy" in t.columns and t["accuracy"].notna().any():
        twin = ax.twinx()
        twin.plot(t["phi"], t["accuracy"] * 100, "^-", color="C2", label="family accuracy")
        twin.yaxis.set_major_formatter(PERCENT)
        twin.set_ylabel("accuracy", color="C2")
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8, loc="upper left")
    ax.set_title("MACs by phi")

    ax2.plot(t["two_pow_phi"], t["macs_ratio"], "o-", color="C0", label="family: MACs / MACs(phi=0)")
    lim = [
        float(min(t["two_pow_phi"].min(), t["macs_ratio"].min())),
        float(max(t["two_pow_phi"].max(), t["macs_ratio"].max())),
    ]
    ax2.plot(lim, lim, "--", color="0.55", label="ideal: ratio = 2^phi")
    for phi, x, y in zip(t["phi"], t["two_pow_phi"], t["macs_ratio"]):
        ax2.annotate(f"phi={phi}", (x, y), xytext=(4, -10), textcoords="offset points", fontsize=7)
    ax2.margins(0.08)
    ax2.set_xscale("log", base=2)
    ax2.set_yscale("log", base=2)
    for axis in (ax2.xaxis, ax2.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax2.set_xlabel("2^phi (the paper's FLOPs growth target)")
    ax2.set_ylabel("MACs ratio to phi = 0 (log scale)")
    ax2.set_title("MACs growth vs 2^phi")
    ax2.grid(True, which="major", alpha=0.3)
    ax2.legend(fontsize=8, loc="upper left")
    return fig


def fig_efficientnet_reference(family: pd.DataFrame | None = None) -> Figure:
    """EfficientNet B0..B7 (paper): top-1 vs params and vs FLOPs; a family's params/MACs as ticks on top."""
    ref = analysis.EFFICIENTNET_PAPER
    fig, axes = new_figure(11.0, 4.3, ncols=2)
    for ax, col, fam_col, label in zip(axes, ("params", "flops"), ("params", "macs"), ("parameters", "FLOPs (MACs)")):
        ax.plot(ref[col], ref["top1"], "o-", color="C0", label="EfficientNet B0..B7 (paper, ImageNet top-1)")
        for name, x, y in zip(ref["name"], ref[col], ref["top1"]):
            ax.annotate(name, (x, y), xytext=(4, -10), textcoords="offset points", fontsize=8)
        handles: list[Any] = []
        if family is not None and fam_col in family.columns:
            trained = "accuracy" in family.columns and family["accuracy"].notna().any()
            for i, x in enumerate(family[fam_col]):
                label_i = f"scaled family (phi {family['phi'].min()}..{family['phi'].max()})" if i == 0 else None
                ax.axvline(float(x), color="C1", ls=":", lw=1.0, label=None if trained else label_i)
            if trained:  # its own accuracy (the proxy's data, not ImageNet): on its own axis, at its MACs
                twin = ax.twinx()
                t = family.sort_values("phi")
                twin.plot(t[fam_col], t["accuracy"] * 100, "^-", color="C1", label="scaled family (its accuracy, "
                          "right axis)")  # fmt: skip
                for phi, x, y in zip(t["phi"], t[fam_col], t["accuracy"] * 100):
                    if y == y:
                        twin.annotate(f"phi={phi}", (x, y), xytext=(4, 4), textcoords="offset points", fontsize=7)
                twin.yaxis.set_major_formatter(PERCENT)
                twin.set_ylabel("scaled family's accuracy (proxy validation)", color="C1")
                handles = twin.get_legend_handles_labels()[0]
        xs = [*ref[col], *(family[fam_col] if family is not None and fam_col in family.columns else [])]
        _log_axis(ax, *_padded(float(min(xs)), float(max(xs)), log=True))
        ax.yaxis.set_major_formatter(PERCENT)
        ax.set_xlabel(f"{label} (log scale)")
        ax.set_ylabel("top-1 accuracy (ImageNet)")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(handles=ax.get_legend_handles_labels()[0] + handles, fontsize=8, loc="lower right")
    axes[0].set_title("EfficientNet: accuracy vs parameters")
    axes[1].set_title("EfficientNet: accuracy vs FLOPs")
    return fig


def save(fig: Figure, out: Path, stem: str) -> list[Path]:
    """`out/stem.png` and `out/stem.svg`."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.{fmt}" for fmt in FORMATS]
    for p in paths:
        fig.savefig(p, dpi=150)
    return paths


def plot_command(
    runs: Sequence[str | Path], out: str | Path | None = None, family: str | Path | None = None, labels: bool = False
) -> list[Path]:
    """`nas plot`: figures of runs (and of a family) as PNG + SVG; returns the files written."""
    if not runs and family is None:
        raise UserError("nothing to plot: give one or more run directories and/or --family")
    table = analysis.load_family(family) if family is not None else None
    df = analysis.load_runs(runs) if runs else None
    if out is None:
        fam = Path(family) if family is not None else Path(".")
        out = Path(runs[0]) / "plots" if runs else (fam if fam.is_dir() else fam.parent) / "plots"
    out = Path(out)
    written: list[Path] = []
    if df is not None:
        if analysis.completed(df).empty:
            raise UserError(f"no completed trial in {', '.join(map(str, runs))}; nothing to plot yet")
        written += save(fig_accuracy_vs_cost(df, "macs", labels=labels), out, "accuracy_vs_macs")
        written += save(fig_accuracy_vs_cost(df, "n_params", labels=labels), out, "accuracy_vs_params")
        if "latency_ms" in df.columns and analysis.completed(df)["latency_ms"].notna().all():
            written += save(fig_accuracy_vs_cost(df, "latency_ms", labels=labels), out, "accuracy_vs_latency")
        written += save(fig_progress(df), out, "progress")
    if table is not None:
        written += save(fig_family(table), out, "family")
        written += save(fig_efficientnet_reference(table), out, "efficientnet_reference")
    return written
