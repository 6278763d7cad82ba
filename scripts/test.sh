#!/usr/bin/env bash
# Set up .venv (if needed), lint, type-check and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
export EFFNAS_REQUIRE_REFERENCES=1  # a timm or fvcore reference test fails instead of skipping (tests/conftest.py)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy effnas search_spaces training nas scaling analysis
.venv/bin/python -m pytest -q "$@"
