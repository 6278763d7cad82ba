"""training/augment.py: random-resized and centre crops, the GPU train loader's policies."""

from __future__ import annotations

import pytest
import torch

from tests.training.helpers import EFFNET, _data
from training.augment import TrainLoader, center_crop_resize, random_resized_crop
from training.recipe import Recipe

# ---- augmentation -------------------------------------------------------------------


def test_random_resized_crop_and_centre_crop():
    x = torch.rand(2, 3, 8, 8)
    same = random_resized_crop(x, 8, min_area=1.0, ratio=(1.0, 1.0))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)  # the whole image, unchanged
    flipped = random_resized_crop(x, 8, min_area=1.0, ratio=(1.0, 1.0), flip=torch.tensor([True, False]))
    torch.testing.assert_close(flipped[0], x[0].flip(-1), atol=1e-5, rtol=0)
    torch.testing.assert_close(flipped[1], x[1], atol=1e-5, rtol=0)
    assert random_resized_crop(x, 5).shape == (2, 3, 5, 5)
    assert torch.equal(center_crop_resize(x, 0.5, 4), x[..., 2:6, 2:6])
    assert center_crop_resize(x, 0.875, 8).shape == (2, 3, 8, 8)


@pytest.mark.parametrize("augment", ["autoaugment", "randaugment"])
@pytest.mark.parametrize("crop, size", [("pad", 16), ("rrc", 12)])
def test_train_loader_policies(augment, crop, size):
    data = _data()
    r = Recipe.from_mapping({**EFFNET, "augment": augment, "crop": crop, "image_size": size, "batch_size": 16,
                             "augment_chunk": 4})  # fmt: skip
    torch.manual_seed(0)
    batches = list(TrainLoader(data, data.train, r, size, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == 4 and all(x.shape == (16, 3, size, size) and x.dtype == torch.float32 for x, _ in batches)
    x0 = batches[0][0] * 0.25 * 255 + 0.5 * 255  # un-normalise: still whole numbers (the policy ran on uint8)
    torch.testing.assert_close(x0, x0.round(), atol=1e-3, rtol=0)
