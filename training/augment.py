"""The recipe's augmentation and evaluation transforms, on device, batched.

Training batches: crop (the data's pad-and-crop, or an ImageNet-style random
resized crop), flip, then AutoAugment / RandAugment from torchvision on the
uint8 images, then normalisation. Evaluation batches: centre crop of a
fraction of the image (TF: image_size / (image_size + 32)) resized to the
training resolution.

Both loaders subclass nas/data.py's `DeviceLoader`: training overrides its
`_augment` hook (which sees the un-normalised 0..255 batch), evaluation
post-processes its normalised batches (crop and resize commute with the
per-channel affine normalisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from training.data import Data, DeviceLoader, Split
from training.recipe import Recipe


def make_policy(recipe: Recipe) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """torchvision's AutoAugment / RandAugment on uint8 (..., 3, H, W); fill 128 as TF's autoaugment.py."""
    if recipe.augment == "none":
        return None
    from torchvision.transforms import v2

    if recipe.augment == "autoaugment":
        return v2.AutoAugment(v2.AutoAugmentPolicy(recipe.autoaugment_policy), fill=128)
    return v2.RandAugment(num_ops=recipe.randaugment_n, magnitude=recipe.randaugment_m, fill=128)


def random_resized_crop(
    x: torch.Tensor,
    size: int,
    min_area: float = 0.08,
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-image random resized crop (area fraction in [min_area, 1], aspect ratio in `ratio`)
    of a float batch (N, C, H, W), bilinear to size x size, in one grid_sample.
    Where torchvision retries a crop that does not fit 10 times, this clamps its sides to the image.
    `flip` (bool per image) mirrors the crop horizontally at no extra cost."""
    n, dev = x.shape[0], x.device
    u = torch.rand(n, 4, device=dev, generator=generator)
    area = min_area + (1.0 - min_area) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r) * x.shape[2] / x.shape[3]  # width/height in pixels -> in fractions
    w = torch.sqrt(area * aspect).clamp(max=1.0)
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (w - 1.0) + (2.0 - 2.0 * w) * u[:, 2]  # centre in [-1 + w, 1 - w] (normalised coords)
    cy = (h - 1.0) + (2.0 - 2.0 * h) * u[:, 3]
    sx = torch.where(flip, -w, w) if flip is not None else w
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, h, cy
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def center_crop_resize(x: torch.Tensor, fraction: float, size: int) -> torch.Tensor:
    """Centre crop `fraction` of the shorter side, then bicubic (antialiased) resize to size x size."""
    h, w = x.shape[-2:]
    side = max(1, int(round(fraction * min(h, w))))
    if fraction < 1.0 or h != w:
        top, left = (h - side) // 2, (w - side) // 2
        x = x[..., top : top + side, left : left + side]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return x


def apply_policy(x: torch.Tensor, policy: Callable[[torch.Tensor], torch.Tensor], chunk: int) -> torch.Tensor:
    """The policy on a float 0..255 batch as uint8, one random draw per `chunk` images."""
    u8 = x.round().clamp_(0, 255).to(torch.uint8)
    out = torch.cat([policy(u8[i : i + chunk]) for i in range(0, u8.shape[0], chunk)])
    return out.to(x.dtype)


class TrainLoader(DeviceLoader):
    """DeviceLoader with the recipe's crop, resolution and policy step."""

    def __init__(
        self,
        data: Data,
        split: Split,
        recipe: Recipe,
        size: int,
        channels_last: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(data, split, recipe.batch_size, train=True, channels_last=channels_last, generator=generator)
        self.crop, self.size, self.min_area = recipe.crop_mode(data.name), size, recipe.rrc_min_area
        self.policy, self.chunk = make_policy(recipe), recipe.augment_chunk

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.crop == "rrc":
            flip = None
            if self.data.flip:
                flip = torch.rand(x.shape[0], device=x.device, generator=self.generator) < 0.5
            x = random_resized_crop(x, self.size, self.min_area, flip=flip, generator=self.generator)
        else:
            x = super()._augment(x)  # the data's pad-and-crop + flip
            if x.shape[-1] != self.size or x.shape[-2] != self.size:
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        if self.policy is not None:
            x = apply_policy(x, self.policy, self.chunk)
        return x


class EvalLoader(DeviceLoader):
    """DeviceLoader (no augmentation) with the recipe's centre crop + resize."""

    def __init__(
        self, data: Data, split: Split, batch_size: int, size: int, fraction: float, channels_last: bool = False
    ) -> None:
        super().__init__(data, split, batch_size, train=False, channels_last=channels_last)
        self.size, self.fraction = size, fraction

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        identity = self.fraction == 1.0 and self.split.x.shape[-2:] == (self.size, self.size)
        for x, y in super().__iter__():
            if not identity:
                x = center_crop_resize(x, self.fraction, self.size)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
            yield x, y
