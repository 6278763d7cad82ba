"""Question: does every bad input and fault in the table end in one `error:` line, the right exit code and
nothing lost, when the real commands run as subprocesses?

    .venv/bin/python bench/bad_input.py [--only SUBSTRING]

Runs every case of tests/effnas/faults.py (the table the fault-injection tests run in-process) as
`python -m nas.cli ...` / `python -m scaling.cli ...` in a fresh folder, and prints, per category, how
many cases there are and how many end cleanly; then every case that did not, with what went wrong.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _machine import machine_line  # bench/ is on sys.path when a script runs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.effnas.faults import CASES, check, snapshot  # noqa: E402

MODULES = {"nas": "nas.cli", "scale": "scaling.cli"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="run the cases whose category or name contains this")
    a = p.parse_args()
    cases = [c for c in CASES if a.only in c.category or a.only in c.name]
    print(machine_line())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    total, clean, bad = Counter[str](), Counter[str](), []
    start = time.perf_counter()
    for case in cases:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            if case.setup is not None:
                case.setup(tmp)
            before = snapshot(tmp)
            argv = [arg.format(tmp=tmp) for arg in case.argv]
            r = subprocess.run([sys.executable, "-m", MODULES[argv[0]], *argv[1:]], cwd=tmp, env=env,
                               capture_output=True, text=True, timeout=600)  # fmt: skip
            problems = check(case, r.returncode, r.stderr, before, snapshot(tmp), tmp)
        total[case.category] += 1
        clean[case.category] += not problems
        if problems:
            bad.append((case, problems))
    print(f"{len(cases)} cases in {time.perf_counter() - start:.0f} s\n")
    print("| category | cases | one line, right exit code, nothing lost |")
    print("|---|---|---|")
    for category in total:
        print(f"| {category} | {total[category]} | {clean[category]} |")
    print(f"| all | {sum(total.values())} | {sum(clean.values())} |")
    for case, problems in bad:
        print(f"\nNOT CLEAN: {case.category}: {case.name}: {'; '.join(problems)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
