"""`nas latency build-table` and `nas latency validate`: time every part a search space can produce on this
machine's device, and check how well the table's sums predict whole networks measured end to end.

    nas latency build-table [space=mnasnet] [out=FILE] [backend=torch|torchscript|onnxruntime] [device=cpu]
                            [batch=1] [threads=1] [resolution=224] [num_classes=1000] [method=auto] [--dry-run]
    nas latency validate table=FILE [n=100] [seed=0] [rounds=3] [--fit] [out=CSV]

How parts are timed: nas/latency_timer.py. The table (search_spaces/latency.py) is rewritten whole every few
seconds, so a killed build resumes.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from effnas.config import at_least, typed
from effnas.errors import UserError
from nas.latency_timer import TableConfig, Timer
from search_spaces.latency import (
    LatencyTable,
    StageOption,
    arch_parts,
    read_table,
    space_parts,
    stage_options,
)

# ---- build-table --------------------------------------------------------------------------------------


def load_space_option(name: str) -> Any:
    """A space by its config-group name (effnas/conf/space/NAME.yaml) or a YAML file."""
    from importlib import resources

    from effnas.config import CONF_PACKAGE, config_groups
    from search_spaces import load_space

    if name in config_groups().get("space", []):
        return load_space(str(resources.files(CONF_PACKAGE) / "space" / f"{name}.yaml"))
    if not Path(name).is_file():
        raise UserError(f"space={name}: neither a space of effnas/conf/space ({', '.join(config_groups()['space'])}) "
                        "nor a file")  # fmt: skip
    return load_space(name)


def default_out(cfg: TableConfig, timer: Timer, space: Any) -> Path:
    dev = "cpu" if timer.device.type == "cpu" else timer.description().split(": ", 1)[1].replace(" ", "-").lower()
    return Path("experiments/latency") / f"{space.name}-{dev}-{cfg.backend}-b{cfg.batch}-{cfg.resolution}.json"


def _score(o: StageOption, count: Counter[str], ahead: dict[int, int], rng: random.Random) -> tuple[Any, ...]:
    c = [count[o.first.key]] + ([count[o.repeat.key]] if o.repeat is not None else [])
    return min(c), sum(c), ahead.get(o.channels_out, 0), rng.random()


def covering_plan(space: Any, resolution: int, num_classes: int, contexts: int, seed: int = 0) -> list[dict[str, Any]]:
    """Points of `space` that together contain every part of it at least `contexts` times: each network takes,
    stage by stage, among the options its input width allows, one with the least covered part (ties: the
    fewest timings of its parts, then the output width that leaves the next stage the least covered, then
    at random), with the most layers (more repeated blocks timed)."""
    stages = stage_options(space, resolution)
    need = set(space_parts(space, resolution, num_classes))
    layers = max(space.choices["layers"])
    count: Counter[str] = Counter()
    rng = random.Random(seed)
    plan: list[dict[str, Any]] = []
    while any(count[k] < contexts for k in need):
        params: dict[str, Any] = {}
        cin = space.base.stem
        for i, options in enumerate(stages):
            ahead: dict[int, int] = {}  # next stage's least-covered first block per input width
            for o in stages[i + 1] if i + 1 < len(stages) else []:
                ahead[o.channels_in] = min(ahead.get(o.channels_in, contexts), count[o.first.key])
            o = min((o for o in options if o.channels_in == cin), key=lambda o: _score(o, count, ahead, rng))
            params.update({f"s{i + 1}_{d}": v for d, v in o.choice.items()})
            params[f"s{i + 1}_layers"] = layers
            cin = o.channels_out
        count.update(p.key for p in arch_parts(space.to_arch(params), resolution, num_classes))
        plan.append(params)
        if len(plan) > 100 * len(need):
            raise RuntimeError("the covering plan does not converge")
    return plan


def write_table(path: Path, table: LatencyTable) -> None:
    import json

    from effnas import rundir

    path.parent.mkdir(parents=True, exist_ok=True)
    rundir.write_text(path, json.dumps(table.to_dict(), indent=1, sort_keys=False) + "\n")


def _resumable(path: Path, header: dict[str, Any]) -> LatencyTable:
    """The table at `path` to continue (same device, backend and settings), or a new one."""
    if not path.exists():
        return LatencyTable(header, path=str(path))
    old = read_table(path)
    same = ("space", "device", "backend", "batch", "threads", "malloc", "resolution", "num_classes", "settings")
    diff = [f"{k}: {old.header.get(k)!r} -> {header[k]!r}" for k in same if old.header.get(k) != header[k]]
    if diff:
        raise UserError(f"{path} holds a table of other settings ({'; '.join(diff[:3])}); use another out=")
    old.header["versions"] = header["versions"]
    return old


def _jobs(cfg: TableConfig, space: Any, timer: Timer, table: LatencyTable) -> tuple[int, list[Callable[[], None]]]:
    """(all jobs, the jobs left) of a build: networks of the covering plan (in-network) or parts (isolated).
    In-network, each part's entry is the median of its observations (one per place it has in a network)."""
    parts = space_parts(space, cfg.resolution, cfg.num_classes)
    if cfg.how == "isolated":

        def one(key: str) -> Callable[[], None]:
            return lambda: table.entries.__setitem__(key, timer.time_part(parts[key]))

        return len(parts), [one(k) for k in parts if k not in table.entries]
    plan = covering_plan(space, cfg.resolution, cfg.num_classes, cfg.contexts)

    def network(j: int) -> Callable[[], None]:
        def run() -> None:
            arch = space.to_arch(plan[j])
            _, ms = timer.time_in_network(arch)
            for part, t in zip(arch_parts(arch, cfg.resolution, cfg.num_classes), ms):
                e = table.entries.setdefault(part.key, {"ms": 0.0, "obs": []})
                e["obs"].append(round(float(t), 6))
                e["ms"] = round(float(np.median(e["obs"])), 6)
            table.header["networks_done"] = j + 1

        return run

    done = int(table.header.get("networks_done", 0))
    return len(plan), [network(j) for j in range(done, len(plan))]


def build_table(cfg: TableConfig, dry_run: bool = False, out: Callable[[str], None] = print) -> Path | None:
    """Time every part of the space not yet in the table; returns the table's path (None for a dry run)."""
    from tqdm import tqdm

    space = load_space_option(cfg.space)
    n_parts = len(space_parts(space, cfg.resolution, cfg.num_classes))
    timer = Timer(cfg)
    path = Path(cfg.out) if cfg.out else default_out(cfg, timer, space)
    header = timer.header(space.name)
    unit = "network" if cfg.how == "in-network" else "part"
    where = (f"{n_parts} parts of space {space.name!r} at {cfg.resolution} px on {header['device']} ({cfg.backend}, "
             f"batch {cfg.batch}, {timer.threads} thread(s), {cfg.how})")  # fmt: skip
    if dry_run:
        scratch = LatencyTable(dict(header))
        total, jobs = _jobs(cfg, space, timer, scratch)
        sample = random.Random(0).sample(jobs, min(3 if unit == "network" else 8, len(jobs)))
        t0 = time.perf_counter()
        for job in sample:
            job()
        per = (time.perf_counter() - t0) / max(1, len(sample))
        out(f"{path}: {where}: {total} {unit}s to time, about {per * total / 60:.1f} min (from {len(sample)} "
            f"{unit}s timed now); nothing written")  # fmt: skip
        return None
    table = _resumable(path, header)
    total, jobs = _jobs(cfg, space, timer, table)
    out(f"{path}: {where}: {total} {unit}s, {total - len(jobs)} already timed")
    last = time.monotonic()
    with tqdm(total=total, initial=total - len(jobs), unit=unit, file=sys.stderr, disable=not jobs) as bar:
        for job in jobs:
            job()
            bar.update()
            if time.monotonic() - last > 5:
                write_table(path, table)
                last = time.monotonic()
    missing = n_parts - len(table.entries)
    if missing:
        raise RuntimeError(f"{missing} parts of the space were not timed")
    table.header["complete"] = True
    write_table(path, table)
    out(f"table: {path} ({len(table.entries)} entries, sha256 {table.sha256[:12]})")
    return path


# ---- validate -------------------------------------------------------------------------------------------


def error_stats(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE (ms), mean absolute percentage error, and the shares within +-5% and +-10% of measured."""
    rel = np.abs(predicted - measured) / measured
    return {"n": int(len(measured)), "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
            "mape": float(rel.mean()), "within_5": float((rel <= 0.05).mean()),
            "within_10": float((rel <= 0.10).mean())}  # fmt: skip


def fit_affine(table_sum: np.ndarray, measured: np.ndarray) -> tuple[float, float]:
    """Least squares `measured = a + b * sum`: a per-model overhead and a scale."""
    design = np.stack([np.ones_like(table_sum), table_sum], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, measured, rcond=None)
    return float(a), float(b)


def validation_report(df: Any, seed: int = 0) -> tuple[list[dict[str, Any]], tuple[float, float]]:
    """Rows of statistics: the plain sum on every model; the affine correction fitted on half the models
    (a seeded split) and judged on the other half, beside the plain sum on that same half; and the
    correction fitted on all (what `--fit` stores)."""
    m, s = df["measured_ms"].to_numpy(float), df["table_sum_ms"].to_numpy(float)
    idx = np.random.default_rng(seed).permutation(len(df))
    fit_i, test_i = idx[: len(df) // 2], idx[len(df) // 2 :]
    a, b = fit_affine(s[fit_i], m[fit_i])
    rows = [{"predictor": "sum", "models": "all", **error_stats(m, s)},
            {"predictor": "sum", "models": "held-out half", **error_stats(m[test_i], s[test_i])},
            {"predictor": f"{a:+.3f} ms + {b:.4f} x sum", "models": "held-out half",
             **error_stats(m[test_i], a + b * s[test_i])}]  # fmt: skip
    return rows, fit_affine(s, m)


@dataclass(frozen=True)
class ValidateConfig:
    table: str = ""
    n: int = 100
    """Architectures sampled from the table's space (the base network first)."""
    seed: int = 0
    out: str = ""
    """CSV of every model's measured and predicted ms; default next to the table."""
    rounds: int = 3
    """Passes over all the models; a model's latency is the median of its passes' medians, so that a slow
    minute of the machine (another tenant, a clock change) does not decide a model's number."""

    def __post_init__(self) -> None:
        if not self.table:
            raise UserError("nas latency validate needs table=FILE")
        at_least("n", self.n, 4)
        at_least("rounds", self.rounds, 1)


def validate(v: ValidateConfig, fit: bool = False, out: Callable[[str], None] = print) -> Any:
    """Measure `n` architectures end to end with the table's own settings; returns the per-model frame."""
    import pandas as pd

    table = read_table(v.table)
    h = table.header
    keys = ("backend", "batch", "threads", "resolution", "num_classes")
    device = "cpu" if str(h["device"]).startswith("cpu") else "cuda"
    cfg = typed(TableConfig, {**{k: h[k] for k in keys}, **h["settings"], "device": device}, "table")
    timer = Timer(cfg)
    if timer.description() != h["device"] or timer.malloc != h.get("malloc"):
        raise UserError(f"{v.table} was built on {h['device']!r} ({h.get('malloc')}); this machine is "
                        f"{timer.description()!r} ({timer.malloc}): validate a table where it was built")  # fmt: skip
    space = load_space_option(h.get("space_source", h["space"]))
    rng = random.Random(v.seed)
    archs = [space.base] + [space.to_arch(space.random(rng)) for _ in range(v.n - 1)]
    times = np.zeros((v.rounds, len(archs)))
    start, total = time.perf_counter(), v.rounds * len(archs)
    for r, (i, arch) in itertools.product(range(v.rounds), enumerate(archs)):
        times[r, i] = timer.time_arch(arch)["ms"]
        done = r * len(archs) + i + 1
        if done % 25 == 0 or done == total:
            eta = (time.perf_counter() - start) / done * (total - done)
            print(f"{done}/{total} measurements ({v.rounds} rounds of {len(archs)} models), ETA {eta:.0f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    measured = np.median(times, axis=0)
    df = pd.DataFrame({"model": range(len(archs)), "base": [i == 0 for i in range(len(archs))],
                       "blocks": [" ".join(a.to_block_strings()) for a in archs], "measured_ms": measured,
                       "round_spread": (times.max(axis=0) - times.min(axis=0)) / measured,
                       "table_sum_ms": [table.table_sum(a) for a in archs],
                       **{f"round{r + 1}_ms": times[r] for r in range(v.rounds)}})  # fmt: skip
    df["sum_error"] = df["table_sum_ms"] / df["measured_ms"] - 1
    report, (a, b) = validation_report(df, v.seed)
    base = df.iloc[0]
    out(f"{table.describe()}\n{len(df)} architectures of space {space.name!r} measured end to end "
        f"(seed {v.seed}); base network: measured {base['measured_ms']:.3f} ms, table sum "
        f"{base['table_sum_ms']:.3f} ms ({base['sum_error']:+.1%})")  # fmt: skip
    out(pd.DataFrame(report).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    if v.rounds > 1:  # the measurement's own noise: how far a model's passes are from their median
        worst = (np.abs(times / measured - 1)).max(axis=0)
        out(f"measurement noise: every pass within +-5% of the model's median for {(worst <= 0.05).mean():.0%} of "
            f"the models, within +-10% for {(worst <= 0.10).mean():.0%} ({v.rounds} passes)")  # fmt: skip
    csv = Path(v.out) if v.out else Path(v.table).with_suffix(".validation.csv")
    from effnas import rundir

    rundir.write_table(csv, df)
    out(f"per model: {csv}")
    if fit:
        table.correction = {"kind": "affine", "a": a, "b": b, "fitted_on": len(df), "seed": v.seed}
        write_table(Path(v.table), table)
        out(f"correction measured = {a:+.4f} ms + {b:.4f} x sum stored in {v.table} (sha256 {table.sha256[:12]}); "
            "runs started with the old table will not resume with this one")  # fmt: skip
    return df


# ---- the command ------------------------------------------------------------------------------------------


def _split(argv: list[str]) -> tuple[dict[str, str], set[str]]:
    flags = {a for a in argv if a.startswith("--")}
    pairs = {}
    for a in argv:
        if a.startswith("--"):
            continue
        if "=" not in a:
            raise UserError(f"expected key=value, got {a!r} (see `nas latency --help`)")
        k, val = a.split("=", 1)
        pairs[k] = val
    return pairs, flags


def cmd_latency(argv: list[str]) -> int:
    doc = (__doc__ or "").strip()
    if not argv or argv[0] in ("-h", "--help") or "--help" in argv or "-h" in argv:
        print(doc)
        return 0
    what, rest = argv[0], argv[1:]
    commands: dict[str, tuple[type, str, Callable[[Any, bool], Any]]] = {
        "build-table": (TableConfig, "--dry-run", lambda c, flag: build_table(c, dry_run=flag)),
        "validate": (ValidateConfig, "--fit", lambda c, flag: validate(c, fit=flag)),
    }
    if what in commands:
        cls, flag, run = commands[what]
        pairs, flags = _split(rest)
        unknown = flags - {flag}
        if unknown:
            raise UserError(f"unknown option {sorted(unknown)[0]} for nas latency {what} (it takes {flag})")
        run(typed(cls, pairs, ""), flag in flags)
        return 0
    raise UserError(f"unknown latency command {what!r}; expected build-table or validate")
