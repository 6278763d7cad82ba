#!/usr/bin/env bash
# Prepares, on this machine, what a GPU session carries (the device machine has torch, timm, pandas,
# pyarrow, scikit-learn, but not optuna or hydra; see ../.library/device/KINDS.md):
#   .whl/      CPython 3.12 x86-64 wheels of optuna, hydra-core, omegaconf and their missing needs
#   .devdata/  the CIFAR-10 10k training subset (28 MB; ../shared does not travel)
# Then one device call:  run(command="bash bench/gpu_check.sh", carry=[".whl", ".devdata"])
# gpu_check.sh installs .whl into /tmp/site first when it is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=(.venv/bin/python -m pip)
rm -rf .whl && mkdir -p .whl .devdata
"${PIP[@]}" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  optuna==5.0.0 alembic==1.20.1 Mako==1.4.3 colorlog==6.12.0 SQLAlchemy==2.1.9 greenlet \
  hydra-core==1.3.8 omegaconf==2.3.1 tabulate==0.10.0
"${PIP[@]}" wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3   # published as a source archive only
cp "${NPZ:-../shared/data/cifar10-train-10k.npz}" .devdata/
du -sh .whl .devdata
