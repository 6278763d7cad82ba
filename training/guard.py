"""A size guard before any network is built: refuse what cannot fit instead of allocating until the
machine runs out of memory (an Arch of 10,000 layers, a width of 10^6, B7 at 600 px on a laptop).

The estimate counts, per image, every activation a training step keeps for the backward pass
(the output of each convolution, BatchNorm and activation, from the same `BlockSpec`s the builder
and the cost model read), times the batch, in float32; plus weights, gradients and two optimizer
states per parameter. It is an estimate, meant to catch the impossible, not to budget memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from effnas.errors import UserError
from search_spaces import Arch, cost
from search_spaces.builder import reduce_strides
from search_spaces.plan import block_specs, conv_out

BYTES = 4
PARAM_COPIES = 4
"""Weights, gradients, and up to two optimizer states (momentum, square average)."""


@dataclass(frozen=True)
class Footprint:
    params: int
    activation_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.activation_bytes + PARAM_COPIES * BYTES * self.params


def footprint(arch: Arch, batch: int, image_size: int, num_classes: int, stride_reduction: int = 0) -> Footprint:
    stem_stride, specs = reduce_strides(block_specs(arch), stride_reduction)
    hw = conv_out(image_size, stem_stride)
    elements = 3 * arch.stem * hw * hw  # conv, BN, activation
    for b in specs:
        out = conv_out(hw, b.stride)
        if b.block == "mbconv":
            elements += 3 * b.mid_channels * hw * hw + 3 * b.mid_channels * out * out
        else:
            elements += 3 * b.mid_channels * out * out
        if b.block != "conv":
            elements += 2 * b.out_channels * out * out
        hw = out
    elements += 3 * arch.head * hw * hw
    params = cost(arch, resolution=image_size, num_classes=num_classes).params
    return Footprint(params, elements * batch * BYTES)


def memory_limit_bytes(device_type: str, limit_gb: float | None) -> int:
    """The configured limit, else 90% of the device's memory (the GPU's, or the machine's RAM)."""
    if limit_gb is not None:
        return int(limit_gb * 1e9)
    if device_type == "cuda":
        import torch

        return int(0.9 * torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    return int(0.9 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def check_fits(
    arch: Arch,
    batch: int,
    image_size: int,
    num_classes: int,
    device_type: str,
    limit_gb: float | None = None,
    stride_reduction: int = 0,
) -> Footprint:
    """UserError (with the estimate) when training `arch` would not fit the limit."""
    fp = footprint(arch, batch, image_size, num_classes, stride_reduction)
    limit = memory_limit_bytes(device_type, limit_gb)
    if fp.total_bytes > limit:
        raise UserError(
            f"{arch.name or 'this architecture'} needs about {fp.total_bytes / 1e9:.1f} GB to train at batch {batch} "
            f"and {image_size} px ({fp.params / 1e6:,.1f}M parameters, {arch.num_blocks} blocks), over the "
            f"{limit / 1e9:.1f} GB limit (train.max_memory_gb): use a smaller batch or image size"
        )
    return fp
