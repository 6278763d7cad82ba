"""The `scale` command: compound-scaling families and the coefficient grid.

    scale family (--coeffs FILE | --alpha A --beta B --gamma G | --preset efficientnet)
                 [--phi N | --phis 0-7] [--base PRESET_OR_ARCH_FILE] [--out DIR]
    scale grid [--phi 1] [--base ...] [--alpha-range 1 2] [--beta-range 1 1.5] [--gamma-range 1 1.5]
               [--step 0.05] [--tol 0.1] [--budget N] [--seed S] [--run DIR] [--top N]

`run=DIR` (as `nas` spells it) is the same as --run (grid) or --out (family).

User errors print one line `error: ...` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effnas import rundir
from effnas.command import Parser, run_main
from effnas.errors import UserError
from effnas.log import logging_to
from scaling.compound import flops_factor, load_coefficients, scale_compound, validate
from scaling.evaluate import GridConfig, compose_grid_config, proxy_evaluator, recipe_summary
from scaling.family import (
    family,
    family_table,
    format_table,
    official_family,
    official_multipliers,
    pure_multipliers,
)
from scaling.grid import Evaluate, grid, rank, winner
from search_spaces import Arch, preset, resolve_arch

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_BASE = "efficientnet-b0"
log = logging.getLogger("scaling")
RESUME_MAY_CHANGE = ("overrides", "training.verbose", "training.executor", "training.ray")
"""Keys a re-run of `scale grid` / `scale family` may change; the overrides are recorded as given, and
what they set is compared in the composed `training` section."""


def parse_phis(spec: str) -> list[int]:
    """'0-7' (inclusive), '1,3,5' or '4'."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", spec)
    if m:
        lo, hi = int(m.group(1)), int(m.group(2))
        if hi < lo:
            raise UserError(f"--phis {spec!r} is empty: {hi} < {lo}")
        return list(range(lo, hi + 1))
    parts = [p.strip() for p in spec.split(",")]
    if not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise UserError(f"--phis must look like 0-7 or 1,3,5 (integers >= 0), got {spec!r}")
    phis = [int(p) for p in parts]
    for p in phis:
        validate(1.0, 1.0, 1.0, p)
    return list(dict.fromkeys(phis))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "arch"


def cmd_family(args: argparse.Namespace) -> int:
    pure = [args.alpha, args.beta, args.gamma]
    sources = sum([args.coeffs is not None, any(v is not None for v in pure), args.preset is not None])
    if sources != 1:
        raise UserError("give exactly one of --coeffs FILE, --alpha/--beta/--gamma, --preset efficientnet")
    if args.phi is not None and args.phis is not None:
        raise UserError("give --phi or --phis, not both")
    if args.phi is not None:
        validate(1.0, 1.0, 1.0, args.phi)
        phis = [args.phi]
    else:
        phis = parse_phis(args.phis or "0-7")

    if args.preset is not None:
        if args.base not in (None, DEFAULT_BASE):
            raise UserError("--preset efficientnet is the published B0..B8; it takes no --base")
        base = preset(DEFAULT_BASE)
        members, mult = official_family(phis), official_multipliers(phis)
        label = "efficientnet"
        coeffs: dict[str, Any] = {"preset": "efficientnet"}
    else:
        if args.coeffs is not None:
            alpha, beta, gamma = load_coefficients(args.coeffs)
        elif any(v is None for v in pure):
            raise UserError("--alpha, --beta and --gamma go together; give all three")
        else:
            alpha, beta, gamma = args.alpha, args.beta, args.gamma
        validate(alpha, beta, gamma)
        shrinking = [f"{n}={v:g}" for n, v in (("alpha", alpha), ("beta", beta), ("gamma", gamma)) if v < 1]
        if shrinking:
            log.warning("warning: %s < 1: members shrink along that dimension as phi grows (the paper constrains "
                        "alpha, beta, gamma >= 1)", ", ".join(shrinking))  # fmt: skip
        base = resolve_arch(args.base or DEFAULT_BASE)
        members, mult = family(base, alpha, beta, gamma, phis), pure_multipliers(alpha, beta, gamma, phis)
        label = f"a{alpha:g}-b{beta:g}-g{gamma:g}"
        coeffs = {"alpha": alpha, "beta": beta, "gamma": gamma, "product": flops_factor(alpha, beta, gamma)}

    out = Path(args.out or Path("experiments") / f"family-{label}")
    archs = [arch for _, arch in members]
    eval_cfg = _eval_config(args)
    config = {"command": "family", "base": base.name, **coeffs, "phis": phis,
              "training": dict(eval_cfg.source) if eval_cfg else None}  # fmt: skip
    with (
        rundir.open_run(out, config, "family", RESUME_MAY_CHANGE),
        logging_to(out / "log.txt", eval_cfg.verbose if eval_cfg else 0, info_at=1),
    ):
        table = family_table(members, base, mult)
        failed: list[str] = []
        if eval_cfg is not None:  # what was trained and how: one row per member, a failed one with its reason
            evaluate = proxy_evaluator(eval_cfg, base, out, archs)
            results = [evaluate(arch) for arch in archs]
            for key in ("accuracy", "proxy_resolution", "seconds"):
                table[key] = [float(r.get(key, "nan")) for r in results]  # NaN for a member that failed
            for key in ("device", "error"):
                table[key] = [r.get(key) for r in results]
            table["seeds"] = [0 if "error" in r else 1 for r in results]
            table["recipe"] = recipe_summary(eval_cfg)
            failed = [f"{arch.name}: {r['error']}" for arch, r in zip(archs, results) if "error" in r]
        for arch in archs:
            rundir.write_text(out / f"{_safe(arch.name)}.yaml", arch.to_yaml())
        rundir.write_table(out / "family.csv", table)
        rundir.write_table(out / "family.parquet", table)
    print(f"family {label} from {base.name or args.base}: {len(members)} members -> {out}")
    print(format_table(table.drop(columns=["recipe", "error"], errors="ignore")))
    if failed:
        print(f"error: {len(failed)} member(s) failed (rows kept with the reason; a rerun trains them again): "
              + "; ".join(failed), file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _grid(args: argparse.Namespace, base: Arch, evaluate: Evaluate | None = None) -> pd.DataFrame:
    """The grid search of the command line's arguments (candidates only when `evaluate` is None)."""
    return grid(base, phi=args.phi, alpha_range=args.alpha_range, beta_range=args.beta_range,
                gamma_range=args.gamma_range, step=args.step, tol=args.tol, budget=args.budget, seed=args.seed,
                evaluate=evaluate)  # fmt: skip


def _eval_config(args: argparse.Namespace) -> GridConfig | None:
    """The proxy-training config of the command line (None for a dry run / a family without --train)."""
    if getattr(args, "dry_run", False) or not getattr(args, "train", True):
        if args.overrides:
            raise UserError(f"key=value overrides {args.overrides} configure proxy training, which this run skips")
        return None
    return compose_grid_config(list(args.overrides))


def cmd_grid(args: argparse.Namespace) -> int:
    if args.top < 0:
        raise UserError(f"--top must be >= 0, got {args.top}")
    base = resolve_arch(args.base)
    run = Path(args.run or Path("experiments") / f"grid-{_safe(base.name or 'arch')}")
    candidates = _grid(args, base)  # validates the grid before anything is written
    eval_cfg = _eval_config(args)
    options = {k: v for k, v in vars(args).items() if k not in ("func", "top", "run")}
    config = {**options, "base_name": base.name, "training": dict(eval_cfg.source) if eval_cfg else None}
    with (
        rundir.open_run(run, config, "grid", RESUME_MAY_CHANGE),
        logging_to(run / "log.txt", eval_cfg.verbose if eval_cfg else 0, info_at=1),
    ):
        if eval_cfg is None:
            table = candidates
        else:
            members = [scale_compound(base, r.alpha, r.beta, r.gamma, 1, name=f"alpha={r.alpha:g} beta={r.beta:g} "
                                      f"gamma={r.gamma:g}") for r in candidates.itertuples()]  # fmt: skip
            table = _grid(args, base, proxy_evaluator(eval_cfg, base, run, members))
        ranked = rank(table)
        ranked_by = "accuracy" if "accuracy" in ranked.columns else "distance"
        rundir.write_table(run / "grid.parquet", ranked)
        rundir.write_text(run / "base_arch.yaml", base.to_yaml())
        if ranked_by == "accuracy":
            best, why = winner(ranked)
            if best is not None:
                best_coeffs = {k: float(best[k]) for k in ("alpha", "beta", "gamma", "product")}
                rundir.write_yaml(run / "coefficients.yaml", {**best_coeffs, "ranked_by": ranked_by})
            else:
                log.warning("no winner: %s; no coefficients.yaml written (train longer or on more images, or "
                            "choose with `scale family --alpha A --beta B --gamma G`)", why)  # fmt: skip
    shown = ranked if args.top == 0 else ranked.head(args.top)
    print(f"grid at phi=1 from {base.name or args.base}: {len(table)} points kept, ranked by {ranked_by} -> {run}")
    if ranked_by == "distance":
        print("(dry run, no accuracy: ranked by |alpha*beta^2*gamma^2 - 2|; no coefficients.yaml written)")
    print(format_table(shown))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="scale", description="Compound scaling (EfficientNet): families and the coefficient grid.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{family,grid}")

    f = sub.add_parser("family", help="scale a base at phi = 0..7 and write one Arch YAML per member")
    f.add_argument("--coeffs", help="YAML with alpha, beta, gamma (e.g. a grid run's coefficients.yaml)")
    f.add_argument("--alpha", type=float, help="depth coefficient")
    f.add_argument("--beta", type=float, help="width coefficient")
    f.add_argument("--gamma", type=float, help="resolution coefficient")
    f.add_argument("--preset", choices=["efficientnet"], help="the published EfficientNet-B0..B8 (hand-set)")
    f.add_argument("--phi", type=int, help="one phi")
    f.add_argument("--phis", help="phis: 0-7 (default), 1,3,5 or 4")
    f.add_argument("--base", help=f"preset, Arch YAML/JSON file or search run directory (default {DEFAULT_BASE})")
    f.add_argument("--out", help="output directory (default experiments/family-<coefficients>)")
    f.add_argument("--train", action="store_true", help="proxy-train each member (key=value overrides as nas search)")
    f.add_argument("overrides", nargs="*", metavar="key=value", help="data=/train.*/device= overrides for --train")
    f.set_defaults(func=cmd_family)

    g = sub.add_parser("grid", help="enumerate alpha, beta, gamma at phi = 1 with alpha*beta^2*gamma^2 ~= 2")
    g.add_argument("--phi", type=float, default=1.0, help="must be 1: the grid is searched at phi = 1")
    g.add_argument(
        "--base",
        default=DEFAULT_BASE,
        help=f"preset, Arch YAML/JSON file or search run directory (default {DEFAULT_BASE})",
    )
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


def _run_override(args: argparse.Namespace) -> None:
    """`run=DIR` among the overrides, as `nas` spells it: the same as --run (grid) or --out (family)."""
    runs = [o for o in args.overrides if o.startswith("run=")]
    if not runs:
        return
    dest = "run" if args.command == "grid" else "out"
    if getattr(args, dest) is not None or len(runs) > 1:
        raise UserError(f"give the run directory once: --{dest} DIR or run=DIR")
    setattr(args, dest, runs[0].split("=", 1)[1])
    args.overrides = [o for o in args.overrides if not o.startswith("run=")]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> int:
        _run_override(args)
        return int(args.func(args))

    return run_main(command)


if __name__ == "__main__":
    sys.exit(main())
