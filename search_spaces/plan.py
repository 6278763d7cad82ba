"""The per-block rules, written once: widths, SE width, residual, drop-path.

Both the builder and the cost model read these `BlockSpec`s, so the two can
never disagree about what a block contains.
"""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces.arch import Arch


@dataclass(frozen=True)
class BlockSpec:
    stage: int
    block: str  # mbconv | ds | conv
    in_channels: int
    out_channels: int
    mid_channels: int  # width the depthwise conv and SE act on (cin for ds, cout for conv)
    kernel: int
    stride: int
    se_channels: int  # 0 = no SE
    shortcut: str  # "none" | "identity" | "pool"
    drop_path: float


def se_width(in_channels: int, se_ratio: float) -> int:
    """SE squeeze width from the block's *input* width (TF official rule)."""
    return max(1, int(in_channels * se_ratio)) if se_ratio > 0 else 0


def block_specs(arch: Arch) -> list[BlockSpec]:
    specs: list[BlockSpec] = []
    total = arch.num_blocks
    index = 0
    for si, (stage, cin) in enumerate(zip(arch.stages, arch.in_channels)):
        for r in range(stage.repeats):
            stride = stage.stride if r == 0 else 1
            in_ch = cin if r == 0 else stage.out_channels
            out_ch = stage.out_channels
            if stage.block == "mbconv":
                mid = int(round(in_ch * stage.expand))
            elif stage.block == "ds":
                mid = in_ch
            else:
                mid = out_ch
            same_shape = stride == 1 and in_ch == out_ch
            if stage.skip == "none":
                shortcut = "none"
            elif stage.skip == "pool" and not same_shape:
                shortcut = "pool"
            else:
                shortcut = "identity" if same_shape else "none"
            specs.append(
                BlockSpec(
                    stage=si,
                    block=stage.block,
                    in_channels=in_ch,
                    out_channels=out_ch,
                    mid_channels=mid,
                    kernel=stage.kernel,
                    stride=stride,
                    se_channels=se_width(in_ch, stage.se_ratio),
                    shortcut=shortcut,
                    drop_path=arch.drop_path * index / total,
                )
            )
            index += 1
    return specs


def conv_out(size: int, stride: int) -> int:
    """Output size of a conv/pool with odd kernel k, padding k // 2: ceil(size / stride)."""
    return -(-size // stride)
