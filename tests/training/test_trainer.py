"""training/trainer.py: stochastic depth and dropout from the recipe, train/eval with EMA and resume in process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from search_spaces import build, preset
from search_spaces.plan import block_specs
from search_spaces.presets import EFFICIENTNET_OFFICIAL
from tests.training.helpers import EFFNET, _data, _tiny_arch
from training.optim import lr_schedule
from training.recipe import Recipe
from training.trainer import recipe_arch, train, train_eval


# ---- stochastic depth and dropout ------------------------------------------------------
def test_survival_probabilities_per_block():
    b0 = preset("efficientnet-b0")
    rates = [s.drop_path for s in block_specs(b0)]
    assert len(rates) == 16
    # TF official (drop_connect_rate * idx / len(blocks)), timm and torchvision all use index / count,
    # 0-based: the first block keeps every sample, the last drops 0.2 * 15/16 = 0.1875, not 0.2.
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])
    assert 1 - rates[-1] == pytest.approx(0.8125)
    net = build(b0, num_classes=10)
    assert [blk.spec.drop_path for stage in net.blocks for blk in stage] == pytest.approx(rates)
    # the recipe's drop_path applies to any Arch (MnasNet presets have none)
    a1 = recipe_arch(preset("mnasnet-a1"), Recipe.from_mapping(EFFNET))
    n = a1.num_blocks
    assert [s.drop_path for s in block_specs(a1)] == pytest.approx([0.2 * i / n for i in range(n)])


@pytest.mark.parametrize("variant", [f"b{i}" for i in range(8)])
def test_dropout_per_variant(variant):
    arch = recipe_arch(preset(f"efficientnet-{variant}"), Recipe.from_mapping(EFFNET))
    expected = EFFICIENTNET_OFFICIAL[variant][3]
    assert arch.dropout == expected == {"b0": 0.2, "b1": 0.2, "b2": 0.3, "b3": 0.3, "b4": 0.4, "b5": 0.4, "b6": 0.5,
                                        "b7": 0.5}[variant]  # fmt: skip
    assert arch.bn_momentum == 0.01 and arch.drop_path == 0.2
    assert recipe_arch(arch, Recipe.from_mapping({**EFFNET, "dropout": 0.35})).dropout == 0.35


# ---- the trainer ---------------------------------------------------------------------


def test_train_eval_efficientnet_recipe_in_process(tmp_path: Path):
    data = _data()
    r = Recipe.from_mapping({**EFFNET, "epochs": 2, "batch_size": 16, "warmup_epochs": 1, "augment_chunk": 8})
    trained = train(_tiny_arch(), data, r, torch.device("cpu"), checkpoint=tmp_path / "ck.pt")
    res = trained.result
    lr = lr_schedule(r, steps_per_epoch=4, batch_size=16)
    assert res.steps == 8 and res.epochs == 2 and res.lr == pytest.approx(lr(7))
    assert len(res.history) == len(res.history_top5) == len(res.history_raw) == 2
    assert trained.model is not trained.train_model  # the EMA copy is the inference model
    assert 0 <= res.accuracy <= res.top5 <= 1 and res.accuracy_raw is not None
    assert res.eval_seconds > 0 and res.train_seconds + res.eval_seconds <= res.seconds
    again = train_eval(_tiny_arch(), data, r, torch.device("cpu"), checkpoint=tmp_path / "ck.pt")
    assert again.resumed_epoch == 2 and again.history == res.history and again.steps == 8
    assert again.seconds >= res.train_seconds and again.train_seconds == res.train_seconds
    assert again.eval_seconds == res.eval_seconds  # summed over calls
    with pytest.raises(ValueError, match="another architecture"):
        train_eval(preset("mnasnet-a1"), data, r, torch.device("cpu"), checkpoint=tmp_path / "ck.pt")
    with pytest.raises(ValueError, match="another recipe"):
        train_eval(_tiny_arch(), data, Recipe.from_mapping({**EFFNET, "epochs": 2, "batch_size": 8}),
                   torch.device("cpu"), checkpoint=tmp_path / "ck.pt")  # fmt: skip


def test_recipe_stride_reduction_reaches_the_trained_network():
    trained = train(_tiny_arch(), _data(), Recipe(epochs=1, batch_size=16, stride_reduction=2), torch.device("cpu"))
    strides = [trained.model.conv_stem.stride] + [b.conv_dw.stride for s in trained.model.blocks for b in s]
    assert strides == [(1, 1), (1, 1), (1, 1), (1, 1)]  # stem and the one stride-2 block reduced
    plain = train(_tiny_arch(), _data(), Recipe(epochs=1, batch_size=16), torch.device("cpu"))
    assert [plain.model.conv_stem.stride, plain.model.blocks[1][0].conv_dw.stride] == [(2, 2), (2, 2)]
