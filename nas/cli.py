"""The `nas` command: search, show, export, train, plot.

    nas search conf=mobile400m [key=value ...]     Hydra config + overrides (--help, --cfg job, --dry-run, -m)
    nas show RUN
    nas export RUN [--trial N] [--format yaml|blocks|timm|pt|onnx|timm-pt|pt2] [--out FILE] [--untrained]
    nas train ARCH [key=value ...]                 ARCH: Arch YAML, preset name or run directory
    nas plot RUN [RUN ...] [--out DIR] [--family DIR_OR_PARQUET] [--labels]
    nas list [FOLDER]                              run directories: command, state, trials/budget, best
    nas compare RUN [RUN ...]                      search runs side by side, with the config keys that differ
    nas fidelity [conf=fidelity] [key=value ...]   proxy vs reference ranking of K architectures
    nas latency build-table|validate [key=value]   latency lookup tables of this device (nas/latency.py)

    nas --shell-completion                         bash completion: eval "$(nas --shell-completion)"

User errors print one line `error: ...` and exit 2; a bug keeps its traceback.
Heavy libraries are imported by the subcommand that needs them, so `nas --help` is instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from effnas.command import Parser, run_main
from effnas.config import default_run_dir, split_conf
from effnas.errors import UserError

if TYPE_CHECKING:
    from search_spaces import Arch


SEARCH_HELP = """nas search conf=mobile400m [key=value ...] [--cfg job] [--dry-run] [-m]

Search the space of `conf` (effnas/conf/<conf>.yaml) for the best reward under the target T, with Hydra
overrides: a group option (`data=npz`, `space=timm`, `train=efficientnet`) or any key of the composed
config (`trials=50 reward.T=300e6 data.path=FILE.npz`).

  --cfg job    print the composed config (what config.yaml would hold) and exit
  --dry-run    print the run directory, the space's size, the base network's cost and the budget; write nothing
  -m           multirun: `key=a,b` sweeps; every combination is a job with its own run directory
               (run=DIR given: DIR/0, DIR/1, ...), all jobs' configs checked before the first starts
"""


def search_help() -> str:
    from effnas.config import conf_names, config_groups

    groups = "\n".join(f"  {g}: {', '.join(opts)}" for g, opts in config_groups().items())
    return (f"{SEARCH_HELP}\n== Configuration groups (key=OPTION) ==\n{groups}\n\n== Configs (conf=NAME) ==\n"
            f"  {', '.join(conf_names())}\n\nThe composed config: nas search [overrides] --cfg job")  # fmt: skip


def _take_flags(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Hydra-style flags among the overrides: --cfg job|all, --dry-run, -m/--multirun."""
    flags: dict[str, Any] = {"cfg": None, "dry_run": False, "multirun": False}
    rest, i = [], 0
    while i < len(args):
        a = args[i]
        if a in ("--cfg", "-c"):
            if i + 1 >= len(args) or args[i + 1] not in ("job", "all"):
                raise UserError("--cfg takes job or all (the composed config)")
            flags["cfg"], i = args[i + 1], i + 2
            continue
        if a == "--dry-run":
            flags["dry_run"] = True
        elif a in ("-m", "--multirun"):
            flags["multirun"] = True
        elif a.startswith("-") and not a.startswith("~"):
            raise UserError(f"unknown option {a!r} (see `nas search --help`)")
        else:
            rest.append(a)
        i += 1
    return flags, rest


def cmd_search(args: list[str]) -> int:
    from effnas.config import sweep

    flags, args = _take_flags(args)
    conf, overrides = split_conf(args, default="mobile400m")
    if not flags["multirun"]:
        return _search_job(conf, overrides, flags)
    jobs = sweep(overrides)
    from nas.config import compose_search

    for i, job in enumerate(jobs):  # every job's config checked before the first job starts
        try:
            compose_search(conf, job)
        except UserError as e:
            raise UserError(f"job {i} ({_varied(job, jobs)}): {e}") from None
    results = []
    for i, job in enumerate(jobs):
        given = next((o.split("=", 1)[1] for o in job if o.startswith("run=")), None)
        if given is not None:
            job = [o for o in job if not o.startswith("run=")] + [f"run={Path(given) / str(i)}"]
        print(f"[job {i + 1}/{len(jobs)}] {_varied(job, jobs) or '(no sweep)'}", file=sys.stderr)
        results.append((i, _varied(job, jobs), _search_job(conf, job, flags)))
    print("multirun: " + "; ".join(f"job {i} ({v}) exit {rc}" for i, v, rc in results))
    return max(rc for _, _, rc in results)


def _varied(job: list[str], jobs: list[list[str]]) -> str:
    """The overrides that differ between the jobs (what names this job)."""
    return " ".join(o for k, o in enumerate(job) if len({j[k] for j in jobs}) > 1)


def _search_job(conf: str, overrides: list[str], flags: dict[str, Any]) -> int:
    from nas.config import RESUME_MAY_CHANGE, compose_search

    cfg = compose_search(conf, overrides)
    if flags["cfg"]:
        import yaml

        sys.stdout.write(yaml.safe_dump(dict(cfg.source), sort_keys=False))
        return 0
    run = Path(cfg.run) if cfg.run else default_run_dir(conf, overrides, RESUME_MAY_CHANGE)
    if flags["dry_run"]:
        _dry_run(cfg, run)
        return 0
    from nas.search import run_search

    print(f"run directory: {run}", file=sys.stderr)
    df = run_search(cfg, run)
    _print_summary(df, cfg.reward, cfg.multi)
    best = run / "best_arch.yaml"
    print(f"results: {run / 'trials.parquet'}  best: {best if best.is_file() else 'none yet'}")
    failed = df[df["state"] == "FAIL"]
    if len(failed) and not (df["state"] == "COMPLETE").any():
        reasons = failed["error"].fillna("unknown").value_counts()
        print(f"error: all {len(failed)} finished trials failed: "
              + "; ".join(f"{n} x {reason}" for reason, n in reasons.head(3).items()), file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _dry_run(cfg: Any, run: Path) -> None:
    """What `nas search` would do, without writing anything."""
    import yaml

    from effnas import rundir
    from nas.objective import arch_cost

    if rundir.is_run_dir(run):
        state = "exists: the search resumes it (a changed config is refused)"
    elif rundir.has_content(run):
        state = "exists and is not a run directory: the search would refuse it"
    else:
        state = "new"
    space = cfg.space
    params, macs = arch_cost(space.base, cfg.reward)
    r = cfg.reward
    cost = r.cost(space.base, macs)
    print(f"run directory: {run} ({state})")
    print(f"space: {space.name}, {len(space.param_names())} choices, {space.size:.3g} points, "
          f"{space.num_archs:.3g} distinct architectures")  # fmt: skip
    print(f"base: {' '.join(space.base.to_block_strings())}")
    print(f"base cost at {r.resolution} px, {r.num_classes} classes: {params / 1e6:.2f}M params, "
          f"{macs / 1e6:.1f}M MACs" + (f", {cost:.2f} ms predicted" if r.metric == "latency" else "")
          + f" (T = {r.describe_target()}: {'within' if cost <= r.target else 'above'})")  # fmt: skip
    print(f"budget: {cfg.trials} trials, sampler {cfg.sampler}, {cfg.workers} worker(s), executor {cfg.executor}, "
          f"{cfg.train.epochs} epoch(s) per trial on {cfg.data.name}")  # fmt: skip
    print("config:")
    sys.stdout.write(yaml.safe_dump(dict(cfg.source), sort_keys=False))


def _print_summary(df: Any, rc: Any, multi: bool, top: int = 5) -> None:
    from analysis.runs import pareto_front, summary
    from nas.noise import estimate

    states = df["state"].value_counts().to_dict()
    print("trials: " + ", ".join(f"{v} {k.lower()}" for k, v in sorted(states.items())))
    s = summary(df, rc.target, top, rc.column)
    if s.empty:
        print("no completed trial")
        return
    cols = ["number", "reward", "accuracy", "macs_M", *(["latency_ms"] if rc.metric == "latency" else []), "n_params",
            "within_T", "seconds"]  # fmt: skip
    if "within_noise_of_best" in s.columns and s["within_noise_of_best"].notna().any():
        cols.append("within_noise_of_best")
    print(s[cols].to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    n = estimate(df)
    if n is not None:
        print(n.describe())
    if multi:
        front = pareto_front(df[df["state"] == "COMPLETE"], rc.column)
        print(f"Pareto front (accuracy vs {'latency' if rc.metric == 'latency' else 'MACs'}):")
        front = front.assign(macs_M=front["macs"] / 1e6)
        print(front[["number", "accuracy", "macs_M", *(["latency_ms"] if rc.metric == "latency" else [])]]
              .to_string(index=False))  # fmt: skip


def cmd_show(argv: list[str]) -> int:
    from nas.results import read_search

    p = Parser(prog="nas show", description="the best trials of a search run")
    p.add_argument("run")
    p.add_argument("--top", type=int, default=10)
    a = p.parse_args(argv)
    run = Path(a.run)
    cfg, df = read_search(run)
    print(f"{run}: conf {cfg.name}, sampler {cfg.sampler}, T = {cfg.reward.describe_target()}")
    _print_summary(df, cfg.reward, cfg.multi, a.top)
    return 0


def cmd_export(argv: list[str]) -> int:
    p = Parser(prog="nas export", description="a trial's architecture as YAML, block strings or timm's arch_def; "
               "its trained network as .pt or ONNX")  # fmt: skip
    p.add_argument("run", help="a `nas search` run directory (or a `nas train` one, for pt/onnx)")
    p.add_argument("--trial", type=int, default=None, help="trial number (default: the best)")
    p.add_argument(
        "--format",
        choices=["yaml", "blocks", "timm", "pt", "onnx", "timm-pt", "pt2"],
        default="yaml",
        help="timm: the JSON timm's EfficientNet is built from; timm-pt: its weights in timm's names; "
        "pt2: torch.export's program (torch.export.load runs it without this package)",
    )
    p.add_argument("--out", default=None, help="file to write (default: stdout for text formats)")
    p.add_argument("--untrained", action="store_true", help="pt/onnx: freshly initialised weights, not the trial's")
    p.add_argument("--num-classes", type=int, default=None, help="with --untrained: classifier width (default: "
                   "the run's, from its kept weights)")  # fmt: skip
    a = p.parse_args(argv)
    from nas import weights
    from nas.export import export_onnx, export_program, export_timm, run_classes
    from nas.results import arch_of_trial, trial_arch

    run = Path(a.run)
    trained_run = (run / "model.pt").is_file() and not (run / "study.journal").exists()  # `nas train`'s
    if a.out and not Path(a.out).resolve().parent.is_dir():
        raise UserError(f"--out {a.out}: folder {Path(a.out).resolve().parent} does not exist")
    if a.format in ("yaml", "blocks", "timm"):
        arch: Arch = weights.load(run / "model.pt")[0] if trained_run else arch_of_trial(run, a.trial)
        if a.format == "yaml":
            text = arch.to_yaml()
        elif a.format == "blocks":
            text = "\n".join(arch.to_block_strings()) + "\n"
        else:
            from search_spaces.codecs import to_timm_spec

            text = json.dumps(to_timm_spec(arch)) + "\n"
        if a.out:
            Path(a.out).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    from search_spaces import build

    if trained_run:
        arch, net = weights.load(run / "model.pt")
    else:
        number, arch = trial_arch(run, a.trial)
        folder = run / weights.DIR
        if a.untrained:
            classes = a.num_classes or run_classes(folder)
            net = build(arch, classes).eval()
        elif weights.path(folder, number).is_file():
            net = weights.load(weights.path(folder, number))[1]
        else:
            have = weights.kept(folder)
            raise UserError(f"trial {number} has no kept weights (the run keeps the best `keep_weights` trials': "
                            f"{', '.join(map(str, have)) if have else 'none'}); export one of those, train it with "
                            "`nas train` on its --format yaml, or pass --untrained")  # fmt: skip
    out = a.out or f"{arch.name}.{a.format.replace('timm-pt', 'timm.pt')}"
    if a.format == "pt":
        import torch

        torch.save({"arch": arch.to_dict(), "state_dict": net.state_dict()}, out)
    elif a.format == "timm-pt":
        export_timm(arch, net, out)
    elif a.format == "pt2":
        export_program(net, arch.resolution, out)
    else:
        export_onnx(net, arch.resolution, out)
    print(f"wrote {out} ({'untrained' if a.untrained else 'trained'} weights, {weights.num_classes(net)} classes)")
    return 0


def cmd_train(argv: list[str]) -> int:
    from training.run import RESUME_MAY_CHANGE, compose_train, train_command

    if not argv or "=" in argv[0] or argv[0].startswith("-"):
        print("usage: nas train ARCH [key=value ...]  (ARCH: Arch YAML, preset name or search run directory)",
              file=sys.stdout if argv and argv[0] in ("-h", "--help") else sys.stderr)  # fmt: skip
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    from search_spaces import resolve_arch

    arch = resolve_arch(argv[0])
    conf, overrides = split_conf(argv[1:], default="train")
    cfg = compose_train(conf, overrides)
    run = Path(cfg.run) if cfg.run else default_run_dir(conf, [argv[0], *overrides], RESUME_MAY_CHANGE)
    return train_command(arch, cfg, run)


def cmd_fidelity(args: list[str]) -> int:
    from nas.fidelity import FREE_KEYS, compose_fidelity, run_fidelity

    conf, overrides = split_conf(args, default="fidelity")
    cfg = compose_fidelity(conf, overrides)
    run = Path(cfg.run) if cfg.run else default_run_dir(conf, overrides, FREE_KEYS)
    print(f"run directory: {run}", file=sys.stderr)
    _, summary = run_fidelity(cfg, run)
    k = f"top{cfg.top_k}"
    shown = {"recipe": "recipe", "spearman_reward": "spearman", "spearman_reward_low": "95% low",
             "spearman_reward_high": "high", "kendall_reward": "kendall", "spearman_reward_one_run": "spearman 1 run",
             f"{k}_overlap_one_run": f"{k} 1 run", "seed_spearman": "seed-seed", "sd_one_run": "sd 1 run",
             "mean_accuracy": "mean acc", "compute_vs_reference": "compute"}  # fmt: skip
    print(f"rank agreement with the reference on reward ({len(summary)} rows; every column: summary.csv)")
    print(summary[list(shown)].rename(columns=shown).to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"results: {run / 'fidelity.parquet'}  summary: {run / 'summary.csv'}")
    return 0


def cmd_plot(argv: list[str]) -> int:
    p = Parser(prog="nas plot", description="PNG + SVG figures of runs and of a model family")
    p.add_argument("runs", nargs="*", metavar="RUN", help="run directories (compared on the same figures)")
    p.add_argument("--out", default=None, help="output folder (default: RUN/plots of the first run)")
    p.add_argument("--family", default=None, help="`scale family --out` folder, or its family.parquet/.csv")
    p.add_argument("--labels", action="store_true", help="write each trial's number beside its point")
    a = p.parse_args(argv)
    from analysis.plot import plot_command

    for f in plot_command(a.runs, a.out, a.family, a.labels):
        print(f)
    return 0


def cmd_list(argv: list[str]) -> int:
    p = Parser(prog="nas list", description="the run directories under a folder: command, state, budget, best trial")
    p.add_argument("folder", nargs="?", default="experiments")
    a = p.parse_args(argv)
    import pandas as pd

    from nas.results import find_runs, run_overview

    folder = Path(a.folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    runs = find_runs(folder)
    if not runs:
        print(f"no run directory under {folder}")
        return 0
    table = pd.DataFrame([run_overview(r) for r in runs])
    print(table.to_string(index=False, na_rep="-", float_format=lambda x: f"{x:.4g}"))
    return 0


def cmd_compare(argv: list[str]) -> int:
    p = Parser(prog="nas compare", description="search runs side by side: best trial, budget, and the config keys "
               "that differ")  # fmt: skip
    p.add_argument("runs", nargs="+", metavar="RUN")
    a = p.parse_args(argv)
    import pandas as pd

    from effnas import rundir
    from nas.results import run_overview

    runs = [Path(r) for r in a.runs]
    configs = [rundir.read_config(r, "search") for r in runs]  # one-line refusal of a run that is not a search
    print(pd.DataFrame([run_overview(r) for r in runs]).to_string(index=False, na_rep="-",
                                                                   float_format=lambda x: f"{x:.4g}"))  # fmt: skip
    flat = [rundir.flat(c) for c in configs]
    keys = sorted(k for k in set().union(*flat) if k != "run" and len({repr(f.get(k)) for f in flat}) > 1)
    if keys:
        print("config keys that differ:")
        print(pd.DataFrame({k: [f.get(k) for f in flat] for k in keys}, index=[str(r) for r in runs]).T.to_string())
    else:
        print("the runs' configs are the same (but for run)")
    return 0


def cmd_latency(argv: list[str]) -> int:
    from nas.latency import cmd_latency

    return cmd_latency(argv)


COMMANDS = {"search": cmd_search, "list": cmd_list, "compare": cmd_compare, "show": cmd_show, "export": cmd_export,
            "train": cmd_train, "plot": cmd_plot, "fidelity": cmd_fidelity, "latency": cmd_latency}  # fmt: skip


def completion_script() -> str:
    """A bash completion for `nas`: subcommands, then for `search` the config groups' options and the composed
    config's keys (`key=`), computed once here so that completing costs nothing."""
    from effnas.config import config_groups
    from effnas.rundir import flat
    from nas.config import compose_search

    words = [f"{g}={o}" for g, opts in config_groups().items() for o in opts]
    words += [f"{k}=" for k in flat(dict(compose_search("mobile400m", []).source))]
    words += ["conf=", "--help", "--cfg", "--dry-run", "-m"]
    return f"""_nas_complete() {{
    # the word under the cursor from the line itself: bash splits words at '=' (COMP_WORDBREAKS)
    local line=${{COMP_LINE:0:$COMP_POINT}}
    local cur=${{line##* }}
    local -a words
    read -ra words <<< "$line"
    [[ "$line" == *" " ]] && words+=("")
    if [ "${{#words[@]}}" -le 2 ]; then
        COMPREPLY=($(compgen -W "{" ".join(COMMANDS)}" -- "$cur"))
    elif [ "${{words[1]}}" = search ] || [ "${{words[1]}}" = fidelity ]; then
        compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -W "{" ".join(sorted(set(words)))}" -- "$cur"))
        if [[ "$cur" == *=* && "$COMP_WORDBREAKS" == *=* ]]; then  # bash completes only the part after '='
            COMPREPLY=("${{COMPREPLY[@]#"${{cur%=*}}="}}")
        fi
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -F _nas_complete nas
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    doc = (__doc__ or "").strip()
    if not argv or argv[0] in ("-h", "--help"):
        print(doc)
        return 0
    if argv[0] == "--shell-completion":  # eval "$(nas --shell-completion)" in ~/.bashrc
        return run_main(lambda: print(completion_script(), end="") or 0)
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; expected one of {', '.join(COMMANDS)} (see `nas --help`)",
              file=sys.stderr)  # fmt: skip
        return 2
    if argv[0] == "search" and ("-h" in argv[1:] or "--help" in argv[1:]):
        print(search_help())
        return 0
    if argv[0] == "fidelity" and argv[1:2] in (["-h"], ["--help"]):
        print(doc)
        return 0
    return run_main(lambda: COMMANDS[argv[0]](argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
