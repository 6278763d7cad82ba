"""Bad inputs and faults, one table for every command: what a careful user can get wrong.

Each `Case` is a command line (`{tmp}` is a fresh folder it may use), a setup that
prepares that folder (run directories of other commands, broken data files, ...),
the exit code it must end with and a fragment of its one `error:` line. `check`
says what went wrong with one outcome: not exactly one `error:` line, a traceback,
another exit code, or a file that was there before and is now changed or gone
(nothing lost). tests/effnas/test_faults.py runs every case in-process;
bench/bad_input.py runs them as real subprocesses and prints the table by category.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FAST = ["train.epochs=1", "data.limit=200", "data.resolution=16", "verbose=0", "recheck=0"]


@dataclass(frozen=True)
class Case:
    category: str
    name: str
    argv: tuple[str, ...]
    needle: str
    """A fragment of the one `error:` line."""
    setup: Callable[[Path], None] | None = None
    code: int = 2
    fresh: str | None = None
    """A path (under {tmp}) that must not exist afterwards: the command was refused before it began."""


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def check(case: Case, code: int | None, stderr: str, before: dict[str, bytes], after: dict[str, bytes],
          tmp: Path) -> list[str]:  # fmt: skip
    """What this outcome did wrong (empty: a clean refusal)."""
    problems = []
    if code != case.code:
        problems.append(f"exit code {code}, expected {case.code}")
    if "Traceback" in stderr:
        problems.append("a traceback")
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("run directory:")]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    if len(errors) != 1 or len(lines) != 1:
        problems.append(f"{len(lines)} stderr line(s), {len(errors)} error line(s)")
    elif case.needle not in errors[0]:
        problems.append(f"message lacks {case.needle!r}: {errors[0]}")
    lost = [name for name, data in before.items() if after.get(name) != data]
    if lost:
        problems.append(f"changed or lost: {', '.join(lost)}")
    if case.fresh and (tmp / case.fresh).exists():
        problems.append(f"{case.fresh} was created")
    return problems


# ---- setups ---------------------------------------------------------------------------------------


def _owned(command: str, cfg: dict[str, object], files: dict[str, str] | None = None) -> Callable[[Path], None]:
    """A run directory {tmp}/run owned by `command`, with `files` beside its config."""

    def setup(tmp: Path) -> None:
        from effnas import rundir

        with rundir.open_run(tmp / "run", cfg, command):
            pass
        for name, text in (files or {}).items():
            (tmp / "run" / name).write_text(text)

    return setup


def _search_run(files: dict[str, str] | None = None) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        from nas.config import compose_search

        _owned("search", dict(compose_search("mobile400m", FAST).source), files)(tmp)

    return setup


def _npz(x: np.ndarray, y: np.ndarray) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        np.savez(tmp / "d.npz", x=x, y=y)

    return setup


def _images(n: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8), np.arange(n) % classes


def _file(name: str, text: str) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)

    return setup


def _both(*setups: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        for s in setups:
            s(tmp)

    return setup


def _table(**header: object) -> Callable[[Path], None]:
    """{tmp}/t.json: a complete latency table of one entry (the default space's stem) with `header`'s changes."""

    def setup(tmp: Path) -> None:
        h = {
            "space": "other",
            "device": "cpu: another CPU",
            "backend": "torch",
            "batch": 1,
            "threads": 1,
            "resolution": 224,
            "num_classes": 1000,
            "settings": {},
            "versions": {},
            "complete": True,
            **header,
        }
        entries = {"stem-input:224x224x3-output:112x112x32-act:silu": {"ms": 1.0}}
        (tmp / "t.json").write_text(
            json.dumps({"format": "effnas latency table v1", "header": h, "correction": None, "entries": entries})
        )

    return setup


x200, y200 = _images(200)
LATENCY = ("reward.metric=latency", "reward.table={tmp}/t.json")
SEARCH = ("nas", "search", *FAST, "run={tmp}/new")
TRAIN = ("nas", "train", "efficientnet-b0", "train=efficientnet", *FAST[:-1], "run={tmp}/new")
NPZ_SEARCH = ("nas", "search", *FAST, "data=npz", "data.path={tmp}/d.npz", "run={tmp}/new")

# fmt: off
CASES: list[Case] = [
    # -- the config: keys, values, groups ------------------------------------------------------------
    Case("config", "unknown key", (*SEARCH, "nosuchkey=1"), "nosuchkey", fresh="new"),
    Case("config", "number that is not one", (*SEARCH, "trials=abc"), "trials", fresh="new"),
    Case("config", "negative data.limit", (*SEARCH, "data.limit=-5"), "data.limit", fresh="new"),
    Case("config", "unknown group option", (*SEARCH, "data=nope"), "Available options in 'data': cifar10, digits",
         fresh="new"),
    Case("config", "a sweep without -m", (*SEARCH, "sampler=tpe,random"), "add --multirun", fresh="new"),
    Case("config", "a sweep with one bad job", (*SEARCH, "-m", "sampler=tpe,bogus"), "job 1 (sampler=bogus)",
         fresh="new"),
    Case("config", "unknown flag", (*SEARCH, "--cfg", "hydra"), "--cfg takes job or all", fresh="new"),
    Case("config", "target of zero MACs", (*SEARCH, "reward.T=0"), "reward.T", fresh="new"),
    Case("config", "positive reward exponent", (*SEARCH, "reward.alpha=0.5"), "alpha", fresh="new"),
    # -- latency as the reward's cost, and its tables ---------------------------------------------------
    Case("latency", "a latency target without a unit", (*SEARCH, *LATENCY, "reward.T=25"), "has no time unit",
         _table(), fresh="new"),
    Case("latency", "a negative latency target", (*SEARCH, *LATENCY, "reward.T=-5ms"), "must be a time > 0",
         _table(), fresh="new"),
    Case("latency", "a time with the MACs metric", (*SEARCH, "reward.T=25ms"), "reward.metric=latency", fresh="new"),
    Case("latency", "metric=latency without a table", (*SEARCH, "reward.metric=latency", "reward.T=25ms"),
         "needs reward.table", fresh="new"),
    Case("latency", "a table file that is not there", (*SEARCH, *LATENCY, "reward.T=25ms"), "does not exist",
         fresh="new"),
    Case("latency", "a file that is not a table", (*SEARCH, *LATENCY, "reward.T=25ms"), "is not a latency table",
         _file("t.json", "{}"), fresh="new"),
    Case("latency", "a table of another space", (*SEARCH, *LATENCY, "reward.T=25ms"), "lacks", _table(),
         fresh="new"),
    Case("latency", "a table of another resolution", (*SEARCH, *LATENCY, "reward.T=25ms"), "built at 192 px",
         _table(resolution=192), fresh="new"),
    Case("latency", "an unfinished table", (*SEARCH, *LATENCY, "reward.T=25ms"), "not complete",
         _table(complete=False), fresh="new"),
    Case("latency", "an unknown backend", ("nas", "latency", "build-table", "backend=tflite", "out={tmp}/new.json"),
         "unknown latency backend", fresh="new.json"),
    Case("latency", "a build over a table of other settings", ("nas", "latency", "build-table", "out={tmp}/t.json"),
         "holds a table of other settings", _table()),
    Case("latency", "validate without a table", ("nas", "latency", "validate"), "needs table=FILE"),
    Case("latency", "validate on another device", ("nas", "latency", "validate", "table={tmp}/t.json"),
         "was built on", _table(space="mnasnet")),
    Case("latency", "an unknown latency command", ("nas", "latency", "predict"), "expected build-table or validate"),
    Case("config", "unknown sampler", (*SEARCH, "sampler=bogus"), "sampler", fresh="new"),
    Case("config", "unknown conf", ("nas", "search", "conf=nosuch", "run={tmp}/new"), "nosuch", fresh="new"),
    Case("config", "zero workers", (*SEARCH, "workers=0"), "workers", fresh="new"),
    Case("config", "evolution population 1", (*SEARCH, "sampler=evolution", "evolution.population=1"),
         "evolution.population", fresh="new"),
    Case("config", "tournament larger than the population", (*SEARCH, "sampler=evolution", "evolution.tournament=30"),
         "evolution.tournament", fresh="new"),
    Case("config", "evolution with two objectives", (*SEARCH, "sampler=evolution", "objective=multi"), "one objective",
         fresh="new"),
    Case("config", "local search with two objectives", (*SEARCH, "sampler=local", "objective=multi"), "one objective",
         fresh="new"),
    Case("config", "RL controller with two objectives", (*SEARCH, "sampler=rl", "objective=multi"), "one objective",
         fresh="new"),
    Case("config", "RL clip range outside (0, 1)", (*SEARCH, "sampler=rl", "rl.clip=1.5"), "rl.clip", fresh="new"),
    Case("config", "warm-up top larger than its pool", (*SEARCH, "warmup.pool=5", "warmup.top=6"), "warmup.top",
         fresh="new"),
    Case("config", "unknown zero-cost score", (*SEARCH, "warmup.pool=5", "warmup.top=1", "warmup.score=snip"),
         "warmup.score", fresh="new"),
    Case("config", "RL update every 0 trials", (*SEARCH, "sampler=rl", "rl.update_every=0"), "rl.update_every",
         fresh="new"),
    Case("config", "zero trials", (*SEARCH, "trials=0"), "trials", fresh="new"),
    Case("config", "keep_weights below -1", (*SEARCH, "keep_weights=-2"), "keep_weights", fresh="new"),
    Case("config", "negative target", (*SEARCH, "reward.T=-5"), "reward.T", fresh="new"),
    Case("config", "unknown optimizer", (*SEARCH, "train.optimizer=adam"), "train.optimizer", fresh="new"),
    Case("data", "data=npz without a path", (*SEARCH, "data=npz"), "data.path", fresh="new"),
    Case("config", "unknown augmentation", (*TRAIN, "train.augment=cutmix"), "augmentation policy", fresh="new"),
    Case("config", "negative RMSprop decay", (*TRAIN, "train.rmsprop_decay=-0.9"), "rmsprop_decay", fresh="new"),
    Case("config", "negative RMSprop epsilon", (*TRAIN, "train.rmsprop_eps=-1e-3"), "epsilon", fresh="new"),
    Case("config", "unknown command", ("nas", "serach"), "unknown command"),
    Case("config", "argparse: bad --top", ("nas", "show", "{tmp}", "--top", "x"), "--top"),
    Case("config", "scale: alpha without beta and gamma", ("scale", "family", "--alpha", "1.2", "--out", "{tmp}/new"),
         "beta", fresh="new"),
    Case("config", "fidelity: K < 3", ("nas", "fidelity", "archs=2", "run={tmp}/new"), "archs", fresh="new"),
    Case("config", "fidelity: proxy equal to the reference",
         ("nas", "fidelity", "reference.epochs=3", "reference.stride_reduction=0", "run={tmp}/new"),
         "reference recipe itself", fresh="new"),
    Case("config", "fidelity: reference cheaper than a proxy",
         ("nas", "fidelity", "reference.epochs=2", "reference.stride_reduction=0", "run={tmp}/new"),
         "not more expensive", fresh="new"),
    Case("config", "fidelity: unknown preset", ("nas", "fidelity", "include=[no-such-net]", "run={tmp}/new"),
         "no-such-net", fresh="new"),
    # -- the data -------------------------------------------------------------------------------------
    Case("data", "missing data file", ("nas", "search", *FAST, "data=npz", "data.path={tmp}/none.npz", "run={tmp}/new"),
         "none.npz", fresh="new"),
    Case("data", "a directory as data.path", ("nas", "search", *FAST, "data=npz", "data.path={tmp}", "run={tmp}/new"),
         "data.path", fresh="new"),
    Case("data", "not an npz file", NPZ_SEARCH, "d.npz", _file("d.npz", "hello"), fresh="new"),
    Case("data", "x and y of different lengths", NPZ_SEARCH, "x has 200 images, y has shape (150,)",
         _npz(x200, y200[:150]), fresh="new"),
    Case("data", "negative labels", NPZ_SEARCH, "label", _npz(x200, y200 - 1), fresh="new"),
    Case("data", "float labels", NPZ_SEARCH, "label", _npz(x200, y200 + 0.5), fresh="new"),
    Case("data", "labels 1000-1009", NPZ_SEARCH, "label", _npz(x200, y200 + 1000), fresh="new"),
    Case("data", "a single class", NPZ_SEARCH, "class", _npz(x200, np.zeros(200, dtype=np.int64)), fresh="new"),
    Case("data", "fewer images than the split needs", NPZ_SEARCH, "images", _npz(x200[:12], y200[:12]), fresh="new"),
    Case("data", "crop padding as large as the image", (*NPZ_SEARCH, "data.crop_padding=16"), "crop_padding",
         _npz(x200, y200), fresh="new"),
    # -- architectures and spaces ---------------------------------------------------------------------
    Case("arch", "unknown preset", ("nas", "train", "no-such-arch", "run={tmp}/new"), "no-such-arch", fresh="new"),
    Case("arch", "malformed Arch YAML", ("nas", "train", "{tmp}/a.yaml", "run={tmp}/new"), "a.yaml",
         _file("a.yaml", "stages: [\n"), fresh="new"),
    Case("arch", "wrongly typed Arch field", ("nas", "train", "{tmp}/a.yaml", "run={tmp}/new"), "stem",
         lambda tmp: _file("a.yaml", _b0_yaml().replace("stem: 32", "stem: many"))(tmp), fresh="new"),
    Case("arch", "even kernel in the space", (*SEARCH, "space.choices.kernel=[3,4]"), "kernel", fresh="new"),
    Case("arch", "min_layers 0 in the space", (*SEARCH, "space.min_layers=0"), "min_layers", fresh="new"),
    Case("arch", "space divisor 0", (*SEARCH, "space.divisor=0"), "divisor", fresh="new"),
    Case("arch", "base skeleton outside its own choices", (*SEARCH, "space.base=[r1_k3_s11_e4_i32_o16]"),
         "enqueue_base", fresh="new"),
    Case("arch", "10,000-layer network",
         ("scale", "family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-60",
          "--out", "{tmp}/new"),
         "phis", fresh="new"),
    Case("arch", "grid without bound", ("scale", "grid", "--dry-run", "--step", "0.0001", "--run", "{tmp}/new"),
         "at most 1,000", fresh="new"),
    # -- run directories ------------------------------------------------------------------------------
    Case("run directory", "scale grid into a search run", ("scale", "grid", "--dry-run", "--run", "{tmp}/run"),
         "not a `scale grid` one", _search_run()),
    Case("run directory", "scale family into a search run",
         ("scale", "family", "--preset", "efficientnet", "--out", "{tmp}/run"), "not a `scale family` one",
         _search_run()),
    Case("run directory", "nas train into a search run",
         ("nas", "train", "efficientnet-b0", *FAST[:-1], "run={tmp}/run"), "not a `nas train` one", _search_run()),
    Case("run directory", "nas search into a grid run", ("nas", "search", *FAST, "run={tmp}/run"),
         "not a `nas search` one", _owned("grid", {"x": 1})),
    Case("run directory", "nas fidelity into a search run", ("nas", "fidelity", "run={tmp}/run"),
         "not a `nas fidelity` one", _search_run()),
    Case("run directory", "a foreign non-empty folder", ("nas", "search", *FAST, "run={tmp}/run"),
         "not an effnas run directory", _file("run/notes.txt", "mine")),
    Case("run directory", "a changed config on resume", ("nas", "search", *FAST, "reward.T=300e6", "run={tmp}/run"),
         "reward.T", _search_run()),
    Case("run directory", "journal gone, results left", ("nas", "search", *FAST, "run={tmp}/run"), "journal",
         _search_run({"trials.parquet": "x"})),
    Case("run directory", "corrupt config.yaml", ("nas", "search", *FAST, "run={tmp}/run"), "config.yaml",
         _both(_search_run(), _file("run/config.yaml", "data: [\n"))),
    Case("run directory", "config.yaml without its sections", ("nas", "show", "{tmp}/run"), "section",
         _both(_search_run(), _file("run/config.yaml", "name: x\n"))),
    Case("run directory", "show of a grid run", ("nas", "show", "{tmp}/run"), "not a `nas search` one",
         _owned("grid", {"x": 1})),
    Case("run directory", "show of a missing folder", ("nas", "show", "{tmp}/none"), "does not exist"),
    Case("run directory", "show of a run without trials", ("nas", "show", "{tmp}/run"), "trial", _search_run()),
    Case("run directory", "fidelity cache from other data", ("nas", "fidelity", "data.limit=300", "run={tmp}/run"),
         "data.limit", lambda tmp: _fidelity_run(tmp)),
    # -- the file system ------------------------------------------------------------------------------
    Case("file system", "run directory below a file", ("nas", "search", *FAST, "run={tmp}/f/run"), "f",
         _file("f", "a file")),
    Case("file system", "run directory is a file", ("nas", "search", *FAST, "run={tmp}/f"), "not a directory",
         _file("f", "a file")),
    Case("file system", "export into a missing folder",
         ("nas", "export", "{tmp}/run", "--format", "yaml", "--out", "{tmp}/no/such/a.yaml"), "no/such",
         lambda tmp: _real_search(tmp)),
    Case("file system", "export of a trial whose weights were not kept",
         ("nas", "export", "{tmp}/run", "--format", "onnx", "--out", "{tmp}/a.onnx"), "no kept weights",
         lambda tmp: _real_search(tmp, "keep_weights=0"), fresh="a.onnx"),
    Case("file system", "timm export of an architecture timm cannot build",
         ("nas", "export", "{tmp}/run", "--format", "timm", "--out", "{tmp}/a.json"), "pooling skip",
         lambda tmp: _real_search(tmp, "space.choices.skip=[pool]", "enqueue_base=false"), fresh="a.json"),
    Case("file system", "untrained export with no classes to read",
         ("nas", "export", "{tmp}/run", "--format", "pt", "--untrained", "--out", "{tmp}/a.pt"), "--num-classes",
         lambda tmp: _real_search(tmp, "keep_weights=0"), fresh="a.pt"),
    Case("file system", "plot of a missing run", ("nas", "plot", "{tmp}/none", "--out", "{tmp}/plots"), "none"),
]
# fmt: on


def _b0_yaml() -> str:
    from search_spaces import preset

    text = preset("efficientnet-b0").to_yaml()
    assert "stem: 32" in text
    return text


def _real_search(tmp: Path, *extra: str) -> None:
    """A finished one-trial search in {tmp}/run (a few seconds of training)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from nas.cli import main

    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["search", "trials=1", *FAST, *extra, f"run={tmp / 'run'}"]) == 0


def _fidelity_run(tmp: Path) -> None:
    from effnas import rundir
    from nas.fidelity import compose_fidelity

    _owned("fidelity", dict(compose_fidelity("fidelity", []).source))(tmp)
    rundir.append_line(tmp / "run" / "evaluations.jsonl", json.dumps({"key": "k", "result": {}}))
