#!/usr/bin/env bash
# Question: which proxy recipe ranks architectures like a long reference training? (`nas fidelity`)
#   bash bench/proxy_fidelity.sh cpu   # the 2-core machine's scale (minutes; small K, few images)
#   bash bench/proxy_fidelity.sh gpu   # the issue's scale on one GPU (the GPU issue runs it)
# NPZ=path/to/cifar10-train-10k.npz overrides the data file (default ../shared/data/...).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NPZ=${NPZ:-../shared/data/cifar10-train-10k.npz}
scale=${1:-cpu}
shift || true
python_nas() { $PY -m nas.cli fidelity data=npz data.path="$NPZ" "$@"; }
if [ "$scale" = cpu ]; then
  # 6 architectures (B0, MnasNet-A1, -B1, 3 space samples across the MACs range), 1,000 train / 250 val
  # images at 32 px; reference: 12 epochs at total stride 16; proxies at <= 1/10 of its compute, 2 seeds.
  python_nas run=experiments/fidelity-cpu archs=6 data.limit=1250 seeds=2 \
    reference.epochs=12 reference.stride_reduction=1 \
    +proxies.stride8.epochs=1 proxies.stride8.stride_reduction=1 "$@"
else
  # the issue's study on one GPU in <= 9 minutes: 24 architectures, the whole 10k training split (8,000 /
  # 2,000), 2 proxy seeds, 4 trainings at once. Reference: 20 epochs at total stride 16 (64-px feature maps).
  # Stride 8 for 30 epochs is 6x that compute: 5.8M images at 128-px-equivalent feature maps, over 6 min
  # for B0-sized nets alone at the H200's measured 5,000 img/s for B0 at 224 px. Proxies: the search default
  # (3 epochs, stride 32; 4% of the reference's epoch x pixel units, with a successive-halving row) and
  # 2 epochs at stride 16 (10%), and the same feature maps by upscaling instead: 2 epochs of 64-px images
  # at stride 32 (10%; the issue asks for both, to keep the better). Resumable: a second call continues.
  python_nas run=experiments/fidelity-gpu archs=24 seeds=2 workers=4 device=cuda \
    train.batch_size=128 train.lr=0.05 '~proxies.stride8' \
    '+proxies.stride16={epochs: 2, stride_reduction: 1}' '+proxies.up64={epochs: 2, image_size: 64}' \
    reference.epochs=20 reference.stride_reduction=1 "$@"
fi
