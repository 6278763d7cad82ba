#!/usr/bin/env bash
# One prepared GPU session (see bench/RESULTS.md): GPU-marked tests, builder throughput
# vs torchvision, trainer overhead, k workers per GPU, a Ray search with fractional GPUs,
# TPE vs random, and the proxy fidelity study. Prints one table per section. Run from the repo root:
#   NPZ=path/to/cifar10-train-10k.npz bash bench/gpu_check.sh
# On the device machine: `bash bench/gpu_prepare.sh` here first, then carry .whl and .devdata;
# ONLY=fidelity,overhead (say) runs some sections.
set -u
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
[ -f .devdata/cifar10-train-10k.npz ] && NPZ=${NPZ:-.devdata/cifar10-train-10k.npz}
export PYTHONPATH="$PWD:${PYTHONPATH:-}" PYTHONUNBUFFERED=1
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0
PY=${PY:-python3}
NPZ=${NPZ:-../shared/data/cifar10-train-10k.npz}
ONLY=${ONLY:-fidelity,surrogate,tests,throughput,overhead,workers,ray,repro33,samplers,family,latency}
section() { echo; echo "=== $* ($(date +%T)) ==="; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
if want fidelity; then
  section "proxy fidelity: 24 architectures, 2 proxy seeds, reference 20 epochs at total stride 16"
  PY=$PY NPZ="$NPZ" timeout 540 bash bench/proxy_fidelity.sh gpu
fi
if want tests; then
  section "GPU-marked tests"
  $PY -m pytest -q -m gpu -p no:cacheprovider tests/search_spaces/test_builder.py
fi
if want throughput; then
  section "builder vs torchvision efficientnet_b0 (train step, bf16, channels_last)"
  $PY bench/train_throughput.py --device cuda --budget 8
fi
if want overhead; then
  section "trainer overhead vs plain torchvision loop"
  $PY bench/trainer_overhead.py --device cuda --npz "$NPZ" --epochs 2 --batch 256
fi
if want workers; then
  section "k trials per GPU"
  $PY bench/gpu_workers.py --npz "$NPZ" --workers 1 2 4 8 --epochs 1 --batch 256
fi
if want ray; then
  section "executor=ray, 4 trials sharing the GPU (gpus_per_trial=0.25)"
  start=$(date +%s)
  $PY -m nas.cli search executor=ray ray.gpus_per_trial=0.25 ray.cpus_per_trial=2 ray.max_concurrent=4 \
      trials=8 data=npz data.path="$NPZ" train.epochs=3 train.batch_size=128 train.lr=0.05 \
      run=/tmp/effnas-ray-gpu verbose=0 2>&1 | tail -15
  echo "wall: $(( $(date +%s) - start )) s"
fi
if want surrogate; then
  section "samplers on a surrogate of 300 real proxy evaluations (CIFAR-10 subset, 8 workers per GPU)"
  $PY -m nas.cli search sampler=random enqueue_base=false trials=300 workers=8 recheck=0 verbose=0 device=cuda \
      data=npz data.path="$NPZ" train.batch_size=128 train.lr=0.05 seed=0 run=/tmp/effnas-surrogate
  $PY bench/sampler_surrogate.py --run /tmp/effnas-surrogate --seeds 20 --trials 100 \
      --table "${OUT:-/tmp}/surrogate-cifar"   # the evaluations come back with the call: commit as bench/data/
fi
if want repro33; then
  section "EfficientNet Sec. 3.3 at proxy scale: width / depth / resolution / compound (CIFAR-10 subset)"
  $PY experiments/repro_section33/run.py --device cuda --data "$(dirname "$NPZ")" --limit 10000 --epochs 20 \
      --batch 128 --lr 0.05 --out /tmp/repro33_gpu.csv
fi
if want samplers; then
  section "samplers on the real objective: 5 seeds x 50 trials each (issue 14's scale; 8 workers per GPU)"
  $PY bench/search_samplers.py --trials 50 --seeds 0 1 2 3 4 --workers 8 --samplers random tpe evolution local rl \
      --npz "$NPZ" --out /tmp/effnas-samplers train.epochs=3 train.batch_size=128 train.lr=0.05
fi
if want family; then
  section "scale family B0-B3 on one GPU: Ray tasks in parallel (GPU share by cost) vs one after another"
  for ex in ray local; do
    start=$(date +%s)
    $PY -m scaling.cli family --preset efficientnet --phis 0-3 --out /tmp/effnas-family-$ex --train executor=$ex \
        ray.gpus_per_trial=0.25 ray.cpus_per_trial=2 data=npz data.path="$NPZ" train.epochs=3 \
        train.batch_size=128 train.lr=0.05 2>&1 | tail -6
    echo "wall ($ex): $(( $(date +%s) - start )) s"
  done
fi
if want latency; then
  section "latency tables on the GPU (issue 16): in-network timing, batch 1 and 64, validated on 100 architectures"
  for b in 1 64; do
    timeout 240 $PY bench/latency_table.py --methods in-network --device cuda --batch $b --out /tmp/effnas-latency \
        2> /tmp/effnas-latency-b$b.err | grep -v "^per model"
  done
fi
