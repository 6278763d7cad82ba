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
# One pytest worker per core (pytest-xdist), each with one torch thread (OMP_NUM_THREADS, which the commands
# honour too); the Ray tests stay together on one worker (xdist_group "ray"). EFFNAS_TEST_WORKERS=0: one process.
workers=${EFFNAS_TEST_WORKERS:-auto}
if [ "$workers" != 0 ]; then export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}; fi
.venv/bin/python -m pytest -q -n "$workers" --dist loadgroup "$@"
