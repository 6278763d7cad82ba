"""Shared test helpers: paths, a random-Arch generator, the real data files."""

from __future__ import annotations

import io
import os
import random
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from search_spaces import Arch, Stage

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EFFNAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CIFAR_TRAIN = SHARED_DATA / "cifar10-train-10k.npz"
CIFAR_TEST = SHARED_DATA / "cifar10-test-2k.npz"
PYTHON = sys.executable


def in_process(command: str, *args: str) -> tuple[int | None, str, str]:
    """`nas ARGS` or `scale ARGS` through its `main()` in this process, without an interpreter's start-up (most
    of a small command's time): the exit code (argparse's SystemExit included), stdout and stderr."""
    from nas.cli import main as nas_main
    from scaling.cli import main as scale_main

    main = {"nas": nas_main, "scale": scale_main}[command]
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def random_arch(rng: random.Random) -> Arch:
    """A random valid Arch over every option the builder has."""
    stages = []
    for _ in range(rng.randint(1, 5)):
        block = rng.choice(["mbconv", "ds", "conv"])
        stages.append(
            Stage(
                block=block,
                repeats=rng.randint(1, 3),
                kernel=rng.choice([1, 3, 5, 7]),
                stride=rng.choice([1, 2]),
                expand=float(rng.choice([2, 3, 4, 6])) if block == "mbconv" else 1.0,
                out_channels=rng.randint(1, 12) * rng.choice([4, 8]),
                se_ratio=rng.choice([0.0, 0.25, 0.5, 0.1]),
                skip=rng.choice(["identity", "none", "pool"]),
            )
        )
    return Arch(
        stages=tuple(stages),
        stem=rng.choice([8, 16, 24, 32]),
        head=rng.choice([0, 64, 128, 320]),
        activation=rng.choice(["silu", "relu"]),
        resolution=rng.choice([17, 32, 48, 63, 64, 96]),
    )


@pytest.fixture
def cifar_train() -> Path:
    if not CIFAR_TRAIN.exists():
        pytest.skip(f"{CIFAR_TRAIN} not present")
    return CIFAR_TRAIN


REQUIRE_REFERENCES = os.environ.get("EFFNAS_REQUIRE_REFERENCES") == "1"
"""scripts/test.sh (CI) sets it: a reference test that would skip because timm or fvcore is missing fails."""


def _fail_missing_reference(report: pytest.CollectReport | pytest.TestReport) -> None:
    """Turn a skip for a reference library that could not be imported into a failure (with the reason)."""
    if not (REQUIRE_REFERENCES and report.skipped):
        return
    reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if "could not import" in reason:
        report.outcome = "failed"
        report.longrepr = f"a reference library is missing ({reason}); install the test extras"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    _fail_missing_reference((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):  # type: ignore[no-untyped-def]
    _fail_missing_reference((yield).get_result())
