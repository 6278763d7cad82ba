"""The `nas` command: search, show, export, train.

    nas search conf=mobile400m [key=value ...]     Hydra config + overrides
    nas show RUN
    nas export RUN [--trial N] [--format yaml|blocks|timm|pt|onnx] [--out FILE]
    nas train ARCH [key=value ...]                 ARCH: Arch YAML, preset name or run directory
    nas plot RUN [RUN ...] [--out DIR] [--family DIR_OR_PARQUET]

User errors print one line `error: ...` and exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
PATH_KEYS = (("data", "path"), ("data", "test_path"), ("data", "root"))


class UsageError(ValueError):
    pass


def compose(conf: str, overrides: list[str]) -> dict[str, Any]:
    """Hydra compose of conf/<conf>.yaml with overrides, resolved to a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if not (CONF_DIR / f"{conf}.yaml").is_file():
        names = sorted(p.stem for p in CONF_DIR.glob("*.yaml"))
        raise UsageError(f"unknown conf={conf!r}; available: {', '.join(names)}")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name=conf, overrides=overrides)
        out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Missing mandatory value" in first:
            key = getattr(e, "full_key", "") or first.split(":")[-1].strip()
            first = f"{key} is required (e.g. {key}=...)"
        raise UsageError(f"bad config: {first}") from None
    assert isinstance(out, dict)
    for section, key in PATH_KEYS:
        v = out.get(section, {}).get(key)
        if v:
            out[section][key] = os.path.abspath(os.path.expanduser(str(v)))
    return out


def default_run_dir(conf: str, overrides: list[str], prefix: str = "") -> Path:
    """Same command -> same directory (so a re-run resumes); budget-like keys don't count."""
    from nas.rundir import RESUME_MAY_CHANGE

    kept = sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in RESUME_MAY_CHANGE)
    tag = "-" + hashlib.sha1(" ".join(kept).encode()).hexdigest()[:8] if kept else ""
    return Path("experiments") / f"{prefix}{conf}{tag}"


def _split_conf(args: list[str], default: str = "mobile400m") -> tuple[str, list[str]]:
    conf, rest = default, []
    for a in args:
        if a.startswith("conf="):
            conf = a.split("=", 1)[1]
        elif "=" not in a:
            raise UsageError(f"expected key=value, got {a!r}")
        else:
            rest.append(a)
    return conf, rest


def cmd_search(args: list[str]) -> int:
    from nas.search import run_search

    conf, overrides = _split_conf(args)
    cfg = compose(conf, overrides)
    run = Path(cfg["run"]) if cfg.get("run") else default_run_dir(conf, overrides)
    cfg["run"] = str(run.resolve())
    print(f"run directory: {run}", file=sys.stderr)
    df = run_search(cfg, run)
    _print_summary(df, cfg)
    print(f"results: {run / 'trials.parquet'}  best: {run / 'best_arch.yaml'}")
    return 0


def _print_summary(df: Any, cfg: dict[str, Any], top: int = 5) -> None:
    from nas.analysis import pareto_front, summary

    states = df["state"].value_counts().to_dict()
    print("trials: " + ", ".join(f"{v} {k.lower()}" for k, v in sorted(states.items())))
    s = summary(df, float(cfg["reward"]["T"]), top)
    if s.empty:
        print("no completed trial")
        return
    cols = ["number", "reward", "accuracy", "macs_M", "n_params", "within_T", "seconds"]
    print(s[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if cfg.get("objective") == "multi":
        front = pareto_front(df[df["state"] == "COMPLETE"])
        print("Pareto front (accuracy vs MACs):")
        print(front.assign(macs_M=front["macs"] / 1e6)[["number", "accuracy", "macs_M"]].to_string(index=False))


def cmd_show(argv: list[str]) -> int:
    from nas import rundir

    p = argparse.ArgumentParser(prog="nas show")
    p.add_argument("run")
    p.add_argument("--top", type=int, default=10)
    a = p.parse_args(argv)
    run = Path(a.run)
    cfg = rundir.read_config(run)
    df = rundir.read_trials(run)
    print(f"{run}: conf {cfg.get('name')}, sampler {cfg.get('sampler')}, T = {float(cfg['reward']['T']) / 1e6:g}M MACs")
    _print_summary(df, cfg, a.top)
    return 0


def arch_of_run(run: Path, trial: int | None = None) -> Any:
    """The Arch of trial N of a run (default: the best)."""
    from nas import rundir
    from nas.search import best_row
    from search_spaces import SearchSpace

    cfg = rundir.read_config(run)
    df = rundir.read_trials(run)
    space = SearchSpace.from_dict(cfg["space"])
    if trial is None:
        row = best_row(df)
        if row is None:
            raise UsageError(f"{run} has no completed trial yet")
    else:
        rows = df[df["number"] == trial]
        if rows.empty:
            raise UsageError(f"{run} has no trial {trial}")
        row = rows.iloc[0]
    return space.to_arch({n: row[n] for n in space.param_names()}).replace(
        name=f"{cfg.get('name')}-t{int(row['number'])}"
    )


def resolve_arch(spec: str) -> Any:
    from search_spaces import load_arch, preset

    if os.path.isdir(spec):
        return arch_of_run(Path(spec))
    if spec.endswith((".yaml", ".yml", ".json")):
        return load_arch(spec)
    return preset(spec)


def cmd_export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="nas export")
    p.add_argument("run")
    p.add_argument("--trial", type=int, default=None)
    p.add_argument("--format", choices=["yaml", "blocks", "timm", "pt", "onnx"], default="yaml")
    p.add_argument("--out", default=None, help="file to write (default: stdout for text formats)")
    p.add_argument("--num-classes", type=int, default=1000)
    a = p.parse_args(argv)
    arch = arch_of_run(Path(a.run), a.trial)
    if a.format in ("yaml", "blocks", "timm"):
        text = {
            "yaml": arch.to_yaml,
            "blocks": lambda: "\n".join(arch.to_block_strings()) + "\n",
            "timm": lambda: json.dumps(arch.to_timm_arch_def()) + "\n",
        }[a.format]()
        if a.out:
            Path(a.out).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    import torch

    from search_spaces import build

    out = a.out or f"{arch.name}.{a.format}"
    net = build(arch, a.num_classes).eval()
    if a.format == "pt":
        torch.save({"arch": arch.to_dict(), "state_dict": net.state_dict()}, out)
    else:
        x = torch.randn(1, 3, arch.resolution, arch.resolution)
        torch.onnx.export(net, (x,), out, input_names=["image"], output_names=["logits"], dynamo=False)
    print(f"wrote {out} (untrained weights; train it with `nas train`)")
    return 0


def cmd_train(argv: list[str]) -> int:
    from nas.train_cli import train_command

    if not argv or "=" in argv[0]:
        raise UsageError("usage: nas train ARCH [key=value ...]  (ARCH: Arch YAML, preset name or run directory)")
    arch = resolve_arch(argv[0])
    conf, overrides = _split_conf(argv[1:], default="train")
    cfg = compose(conf, overrides)
    run = Path(cfg["run"]) if cfg.get("run") else default_run_dir(conf, [argv[0], *overrides], prefix="")
    return train_command(arch, cfg, run)


def cmd_plot(argv: list[str]) -> int:
    from nas.plot import plot_command

    p = argparse.ArgumentParser(prog="nas plot", description="PNG + SVG figures of runs and of a model family")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run directories (compared on the same figures)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/plots of the first run)")
    p.add_argument("--family", default=None, help="`scale family --out` folder, or its family.parquet/.csv")
    a = p.parse_args(argv)
    for f in plot_command(a.runs, a.out, a.family):
        print(f)
    return 0


COMMANDS = {"search": cmd_search, "show": cmd_show, "export": cmd_export, "train": cmd_train, "plot": cmd_plot}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (UsageError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
