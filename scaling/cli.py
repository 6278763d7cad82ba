"""The `scale` command: compound-scaling families and the coefficient grid.

    scale family (--coeffs FILE | --alpha A --beta B --gamma G | --preset efficientnet)
                 [--phi N | --phis 0-7] [--base PRESET_OR_ARCH_FILE] [--out DIR]
    scale grid [--phi 1] [--base ...] [--alpha-range 1 2] [--beta-range 1 1.5] [--gamma-range 1 1.5]
               [--step 0.05] [--tol 0.1] [--budget N] [--seed S] [--run DIR] [--top N]

User errors print one line `error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from scaling.compound import flops_factor, load_coefficients, scale_compound, validate
from scaling.family import (
    family,
    family_table,
    format_table,
    official_family,
    official_multipliers,
    pure_multipliers,
)
from scaling.grid import Evaluate, grid, rank
from search_spaces import Arch, load_arch, preset, preset_names

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_BASE = "efficientnet-b0"
ARCH_SUFFIXES = (".yaml", ".yml", ".json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + message
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def load_base(spec: str) -> Arch:
    """A preset name or an Arch YAML/JSON file."""
    if spec.endswith(ARCH_SUFFIXES) or os.path.sep in spec or os.path.exists(spec):
        return load_arch(spec)
    try:
        return preset(spec)
    except ValueError:
        raise ValueError(
            f"--base {spec!r} is neither a preset ({', '.join(preset_names())}) nor an Arch .yaml/.json file"
        ) from None


def parse_phis(spec: str) -> list[int]:
    """'0-7' (inclusive), '1,3,5' or '4'."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", spec)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise ValueError(f"--phis {spec!r} is empty: {hi} < {lo}")
        return list(range(lo, hi + 1))
    parts = [p.strip() for p in spec.split(",")]
    if not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise ValueError(f"--phis must look like 0-7 or 1,3,5 (integers >= 0), got {spec!r}")
    phis = [int(p) for p in parts]
    for p in phis:
        validate(1.0, 1.0, 1.0, p)
    return list(dict.fromkeys(phis))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "arch"


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def cmd_family(args: argparse.Namespace) -> int:
    pure = [args.alpha, args.beta, args.gamma]
    sources = sum([args.coeffs is not None, any(v is not None for v in pure), args.preset is not None])
    if sources != 1:
        raise ValueError("give exactly one of --coeffs FILE, --alpha/--beta/--gamma, --preset efficientnet")
    if args.phi is not None and args.phis is not None:
        raise ValueError("give --phi or --phis, not both")
    if args.phi is not None:
        validate(1.0, 1.0, 1.0, args.phi)
        phis = [args.phi]
    else:
        phis = parse_phis(args.phis or "0-7")

    if args.preset is not None:
        if args.base not in (None, DEFAULT_BASE):
            raise ValueError("--preset efficientnet is the published B0..B8; it takes no --base")
        base = preset(DEFAULT_BASE)
        members, mult = official_family(phis), official_multipliers(phis)
        label = "efficientnet"
        coeffs: dict[str, Any] = {"preset": "efficientnet"}
    else:
        if args.coeffs is not None:
            alpha, beta, gamma = load_coefficients(args.coeffs)
        elif any(v is None for v in pure):
            raise ValueError("--alpha, --beta and --gamma go together; give all three")
        else:
            alpha, beta, gamma = args.alpha, args.beta, args.gamma
        validate(alpha, beta, gamma)
        base = load_base(args.base or DEFAULT_BASE)
        members, mult = family(base, alpha, beta, gamma, phis), pure_multipliers(alpha, beta, gamma, phis)
        label = f"a{alpha:g}-b{beta:g}-g{gamma:g}"
        coeffs = {"alpha": alpha, "beta": beta, "gamma": gamma, "product": flops_factor(alpha, beta, gamma)}

    out = Path(args.out or Path("experiments") / f"family-{label}")
    evaluate, eval_cfg = _evaluator(args, base, out)
    table = family_table(members, base, mult)
    if evaluate is not None:
        results = [evaluate(arch) for _, arch in members]
        for key in ("accuracy", "proxy_resolution", "seconds"):
            table[key] = [r[key] for r in results]
    out.mkdir(parents=True, exist_ok=True)
    for _, arch in members:
        (out / f"{_safe(arch.name)}.yaml").write_text(arch.to_yaml(), encoding="utf-8")
    table.to_csv(out / "family.csv", index=False)
    table.to_parquet(out / "family.parquet", index=False)
    _write_yaml(
        out / "config.yaml",
        {"command": "family", "base": base.name, **coeffs, "phis": phis, "training": eval_cfg or None},
    )
    print(f"family {label} from {base.name or args.base}: {len(members)} members -> {out}")
    print(format_table(table))
    return 0


def _grid(args: argparse.Namespace, base: Arch, evaluate: Evaluate | None = None) -> pd.DataFrame:
    """The grid search of the command line's arguments (candidates only when `evaluate` is None)."""
    return grid(base, phi=args.phi, alpha_range=args.alpha_range, beta_range=args.beta_range,
                gamma_range=args.gamma_range, step=args.step, tol=args.tol, budget=args.budget, seed=args.seed,
                evaluate=evaluate)  # fmt: skip


def members(args: argparse.Namespace, base: Arch) -> list[Arch]:
    """The networks this command will evaluate (so executor=ray can train them in parallel first)."""
    if args.command == "grid":
        table = _grid(args, base)
        return [scale_compound(base, r.alpha, r.beta, r.gamma, 1) for r in table.itertuples()]
    return []


def _evaluator(args: argparse.Namespace, base: Arch, run: Path) -> tuple[Evaluate | None, dict[str, Any]]:
    """Proxy training through nas's objective, unless --dry-run; also the composed config."""
    if getattr(args, "dry_run", False) or not getattr(args, "train", True):
        if args.overrides:
            raise ValueError(f"key=value overrides {args.overrides} configure proxy training, which this run skips")
        return None, {}
    from scaling.evaluate import compose_eval_config, proxy_evaluator

    cfg = compose_eval_config(list(args.overrides))
    return proxy_evaluator(cfg, base, run, prefill=members(args, base)), cfg


def cmd_grid(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise ValueError(f"--top must be >= 0, got {args.top}")
    base = load_base(args.base)
    run = Path(args.run or Path("experiments") / f"grid-{_safe(base.name or 'arch')}")
    evaluate, eval_cfg = _evaluator(args, base, run)
    table = _grid(args, base, evaluate)
    ranked = rank(table)
    ranked_by = "accuracy" if "accuracy" in ranked.columns else "distance"
    run.mkdir(parents=True, exist_ok=True)
    ranked.to_parquet(run / "grid.parquet", index=False)
    (run / "base_arch.yaml").write_text(base.to_yaml(), encoding="utf-8")
    config = {k: v for k, v in vars(args).items() if k != "func"}
    _write_yaml(run / "config.yaml", {**config, "base_name": base.name, "training": eval_cfg or None})
    best = ranked.iloc[0]
    best_coeffs = {k: float(best[k]) for k in ("alpha", "beta", "gamma", "product")}
    _write_yaml(run / "coefficients.yaml", {**best_coeffs, "ranked_by": ranked_by})
    shown = ranked if args.top == 0 else ranked.head(args.top)
    print(f"grid at phi=1 from {base.name or args.base}: {len(table)} points kept, ranked by {ranked_by} -> {run}")
    if ranked_by == "distance":
        print("(dry run, no accuracy: ranked by |alpha*beta^2*gamma^2 - 2|)")
    print(format_table(shown))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="scale", description="Compound scaling (EfficientNet): families and the coefficient grid.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{family,grid}")

    f = sub.add_parser("family", help="scale a base at phi = 0..7 and write one Arch YAML per member")
    f.add_argument("--coeffs", help="YAML with alpha, beta, gamma (e.g. a grid run's coefficients.yaml)")
    f.add_argument("--alpha", type=float, help="depth coefficient")
    f.add_argument("--beta", type=float, help="width coefficient")
    f.add_argument("--gamma", type=float, help="resolution coefficient")
    f.add_argument("--preset", choices=["efficientnet"], help="the published EfficientNet-B0..B8 (hand-set)")
    f.add_argument("--phi", type=int, help="one phi")
    f.add_argument("--phis", help="phis: 0-7 (default), 1,3,5 or 4")
    f.add_argument("--base", help=f"preset name or Arch YAML/JSON file (default {DEFAULT_BASE})")
    f.add_argument("--out", help="output directory (default experiments/family-<coefficients>)")
    f.add_argument("--train", action="store_true", help="proxy-train each member (key=value overrides as nas search)")
    f.add_argument("overrides", nargs="*", metavar="key=value", help="data=/train.*/device= overrides for --train")
    f.set_defaults(func=cmd_family)

    g = sub.add_parser("grid", help="enumerate alpha, beta, gamma at phi = 1 with alpha*beta^2*gamma^2 ~= 2")
    g.add_argument("--phi", type=float, default=1.0, help="must be 1: the grid is searched at phi = 1")
    g.add_argument("--base", default=DEFAULT_BASE, help=f"preset name or Arch YAML/JSON file (default {DEFAULT_BASE})")
    g.add_argument("--alpha-range", type=float, nargs=2, default=[1.0, 2.0], metavar=("LO", "HI"))
    g.add_argument("--beta-range", type=float, nargs=2, default=[1.0, 1.5], metavar=("LO", "HI"))
    g.add_argument("--gamma-range", type=float, nargs=2, default=[1.0, 1.5], metavar=("LO", "HI"))
    g.add_argument("--step", type=float, default=0.05, help="grid step (exact decimal), default 0.05")
    g.add_argument("--tol", type=float, default=0.1, help="keep |alpha*beta^2*gamma^2 - 2| <= tol, default 0.1")
    g.add_argument("--budget", type=int, help="keep a seeded random subset of this many points")
    g.add_argument("--seed", type=int, default=0, help="seed of the --budget subset")
    g.add_argument("--run", help="run directory (default experiments/grid-<base>)")
    g.add_argument("--top", type=int, default=25, help="rows to print (0 = all), default 25")
    g.add_argument("--dry-run", action="store_true", help="enumerate only; rank by closeness to 2, no training")
    g.add_argument("overrides", nargs="*", metavar="key=value", help="data=/train.*/device= overrides (as nas search)")
    g.set_defaults(func=cmd_grid)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, OSError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
