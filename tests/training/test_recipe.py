"""training/recipe.py: the YAML recipes, bad recipes, evaluation resolution and crop per variant."""

from __future__ import annotations

import pytest

from search_spaces import preset
from search_spaces.presets import EFFICIENTNET_OFFICIAL
from tests.training.helpers import EFFNET
from training.recipe import Recipe


# ---- config ------------------------------------------------------------------
def test_yaml_recipes():
    from nas.config import compose_search
    from training.run import compose_train

    assert compose_search("mobile400m", []).train == Recipe()  # proxy.yaml == the defaults
    r = compose_train("train", ["train=efficientnet"]).train
    assert (r.optimizer, r.rmsprop_decay, r.momentum, r.rmsprop_eps) == ("rmsprop_tf", 0.9, 0.9, 1e-3)
    assert r.weight_decay == 1e-5
    assert (r.lr, r.lr_batch, r.schedule, r.lr_decay_rate, r.lr_decay_epochs, r.staircase) == (
        0.256, 4096, "exponential", 0.97, 2.4, True)  # fmt: skip
    assert (r.label_smoothing, r.drop_path, r.dropout, r.bn_momentum, r.ema_decay) == (0.1, 0.2, None, None, 0.9999)
    assert r.augment == "autoaugment" and r.autoaugment_policy == "imagenet"
    assert r.peak_lr(4096) == pytest.approx(0.256) and r.peak_lr(256) == pytest.approx(0.016)


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"augment": "mixup"}, "augmentation policy"),
        ({"autoaugment_policy": "coco"}, "AutoAugment policy"),
        ({"rmsprop_decay": -0.1}, "rmsprop_decay"),
        ({"rmsprop_eps": -1e-3}, "epsilon"),
        ({"rmsprop_eps": 0}, "epsilon"),
        ({"ema_decay": -0.5}, "ema_decay"),
        ({"lr_decay_rate": -0.97}, "lr_decay_rate"),
        ({"schedule": "step"}, "schedule"),
        ({"image_size": "huge"}, "image_size"),
        ({"lr": "fast"}, "number"),
        ({"nope": 1}, "unknown train keys"),
    ],
)
def test_bad_recipe(change, needle):
    with pytest.raises(ValueError, match=needle):
        Recipe.from_mapping({**EFFNET, **change})


TIMM_CROP_PCT = {"b0": 0.875, "b1": 0.882, "b2": 0.890, "b3": 0.904, "b4": 0.922, "b5": 0.934, "b6": 0.942, "b7": 0.949}


@pytest.mark.parametrize("variant, crop_pct", sorted(TIMM_CROP_PCT.items()))
def test_eval_resolution_and_crop_per_variant(variant, crop_pct):
    arch = preset(f"efficientnet-{variant}")
    r = Recipe.from_mapping(EFFNET)
    size = r.train_size("imagefolder", 256, arch.resolution)  # ImageNet-style data: rrc at the variant's size
    assert size == EFFICIENTNET_OFFICIAL[variant][2]
    frac = r.eval_crop_fraction("imagefolder", size)
    assert frac == size / (size + 32) and frac == pytest.approx(crop_pct, abs=1e-3)  # timm's crop_pct
    assert r.train_size("npz", 32, arch.resolution) == 32 and r.eval_crop_fraction("npz", 32) == 1.0
