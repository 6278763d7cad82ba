#!/usr/bin/env bash
# EfficientNet-B0 (preset) on CIFAR-10 (JPEG q75 copy, shared/data), the paper's recipe
# (train=efficientnet) next to the search's proxy recipe (train=proxy), same epochs, batch,
# data, seed. Scaled down for a 2-core CPU: 3,000 images (2,400 train / 600 val), 32 px,
# 5 epochs, batch 32 (the efficientnet recipe's lr scales to 0.256 * 32 / 4096 = 0.002),
# warm-up 1 epoch instead of 5 (5 would be the whole run). Test: the 2,000-image test file.
# Re-running resumes/reuses the run directories (experiments/recipe_b0/runs/, git-ignored).
# Findings: README.md here; results.txt is this script's output (ABLATIONS=1), 2026-11-27.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=experiments/recipe_b0/runs
SHARED=${EFFNAS_SHARED_DATA:-../shared/data}
COMMON=(data=npz "data.path=$SHARED/cifar10-train-10k.npz" "data.test_path=$SHARED/cifar10-test-2k.npz"
        data.limit=3000 data.resolution=32 train.epochs=5 train.batch_size=32 seed=0 device=cpu verbose=1)

.venv/bin/nas train efficientnet-b0 train=efficientnet train.warmup_epochs=1 "${COMMON[@]}" run=$OUT/efficientnet
.venv/bin/nas train efficientnet-b0 train=proxy "${COMMON[@]}" run=$OUT/proxy
# the paper's recipe with the two changes the ablations below point to for a run this short:
# BN momentum 0.1 (TF 0.9) instead of 0.01 (TF 0.99), and the learning rate / 8
.venv/bin/nas train efficientnet-b0 train=efficientnet train.warmup_epochs=1 "${COMMON[@]}" \
    train.bn_momentum=0.1 train.lr=0.032 run=$OUT/efficientnet-short

if [[ "${ABLATIONS:-0}" == 1 ]]; then  # 3-epoch variants of the efficientnet recipe (README, "Why")
  A=(efficientnet-b0 train=efficientnet train.warmup_epochs=1 "${COMMON[@]}" train.epochs=3)
  .venv/bin/nas train "${A[@]}" run=$OUT/abl-full
  .venv/bin/nas train "${A[@]}" train.optimizer=sgd train.lr=0.02 train.lr_batch=null run=$OUT/abl-sgd
  .venv/bin/nas train "${A[@]}" train.augment=none train.drop_path=0 train.ema_decay=0 train.bn_momentum=0.1 \
      run=$OUT/abl-plain
  .venv/bin/nas train "${A[@]}" train.lr=0.032 run=$OUT/abl-lr-div8
  .venv/bin/nas train "${A[@]}" train.lr=0.004 run=$OUT/abl-lr-div64
  .venv/bin/nas train "${A[@]}" train.bn_momentum=0.1 train.ema_decay=0 run=$OUT/abl-eval  # same training, other eval
  .venv/bin/nas train "${A[@]}" train.augment=none run=$OUT/abl-noaug
  .venv/bin/nas train "${A[@]}" train.augment=none train.bn_momentum=0.1 train.ema_decay=0 run=$OUT/abl-noaug-eval
  .venv/bin/nas train "${A[@]}" train.augment=none train.bn_momentum=0.1 train.ema_decay=0 train.lr=0.032 \
      run=$OUT/abl-noaug-eval-lr-div8
  .venv/bin/nas train "${A[@]}" train.bn_momentum=0.1 train.ema_decay=0 train.lr=0.032 run=$OUT/abl-eval-lr-div8
  .venv/bin/nas train "${A[@]}" train.augment=none train.lr=0.032 run=$OUT/abl-noaug-lr-div8
  P=(train.augment=none train.drop_path=0 train.ema_decay=0 train.bn_momentum=0.1)
  .venv/bin/nas train "${A[@]}" "${P[@]}" train.lr=0.032 run=$OUT/abl-plain-lr-div8
  .venv/bin/nas train "${A[@]}" "${P[@]}" train.optimizer=sgd train.lr=0.02 train.lr_batch=null run=$OUT/abl-plain-sgd
fi

.venv/bin/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print("| recipe | val top-1 | val top-1 w/o EMA | test top-1 | test top-5 | steps | final lr | train img/s | seconds |")
print("|---|---|---|---|---|---|---|---|---|")
names = ["efficientnet", "proxy", "efficientnet-short"] + sorted(p.name for p in out.glob("abl-*") if (p / "metrics.json").is_file())
for name in names:
    m = json.loads((out / name / "metrics.json").read_text())
    raw = "" if m["val_accuracy_without_ema"] is None else f"{m['val_accuracy_without_ema']:.4f}"
    print(f"| {name} | {m['val_accuracy']:.4f} | {raw} | {m['test_accuracy']:.4f} | {m['test_top5']:.4f} | "
          f"{m['steps']} | {m['final_lr']:.3g} | {m['images_per_second']:.0f} | {m['seconds']:.0f} |")
for name in names:
    m = json.loads((out / name / "metrics.json").read_text())
    print(f"{name} val history: {[round(a, 4) for a in m['val_history']]}")
PY
