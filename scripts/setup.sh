#!/usr/bin/env bash
# Create .venv in the repo root and install the project with the pinned set
# (constraints.txt). Re-running is cheap: it reinstalls only when the pins change.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.effnas-installed
want=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, on its own: the pinned CUDA build (runs on CPU too).
  .venv/bin/python -m pip install -q -c constraints.txt torch torchvision
  .venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
  echo "$want" > "$stamp"
fi
