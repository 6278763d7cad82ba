"""Scaling an `Arch` by depth, width and resolution: the rounding rules, once.

Same rules as TF official, timm and torchvision. `scaling/` (compound rule,
grid search, families) and the EfficientNet presets both call `scale`.
"""

from __future__ import annotations

import math
from dataclasses import replace

from effnas.errors import UserError
from search_spaces.arch import Arch

RESOLUTION_MULTIPLE = 8
"""A resolution *factor* gives base * factor rounded to the nearest multiple of
this. The official table's 260 and 300 are not multiples of 8: pass an exact
size as `resolution=int` for those."""


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Scale a width, round to a multiple of `divisor`, never lose more than 10%."""
    x = channels * width
    n = max(divisor, int(x + divisor / 2) // divisor * divisor)
    if n < 0.9 * x:
        n += divisor
    return int(n)


def round_repeats(repeats: int, depth: float, mode: str = "ceil") -> int:
    """Scale a stage's block count: `ceil` (official) or `round`."""
    if mode == "ceil":
        return int(math.ceil(repeats * depth))
    if mode == "round":
        return max(1, int(round(repeats * depth)))
    raise UserError(f"unknown depth rounding {mode!r}; expected 'ceil' or 'round'")


def round_resolution(resolution: int, factor: float, multiple: int = RESOLUTION_MULTIPLE) -> int:
    return max(multiple, int(round(resolution * factor / multiple)) * multiple)


def scale(
    arch: Arch,
    depth: float = 1.0,
    width: float = 1.0,
    resolution: float | int = 1.0,
    *,
    scale_stem_head: bool = True,
    fix_first_last_repeats: bool = False,
    depth_rounding: str = "ceil",
    divisor: int = 8,
    dropout: float | None = None,
    name: str | None = None,
) -> Arch:
    """Scale `arch`. `resolution` is a factor (float) or an exact size (int): pass
    a computed factor as float (`float(gamma ** phi)`)."""
    if not isinstance(arch, Arch):
        raise TypeError(f"scale() needs an Arch, got {type(arch).__name__}")
    for what, v in (("depth", depth), ("width", width), ("resolution", resolution)):
        if not v > 0:
            raise UserError(f"{what} multiplier must be > 0, got {v}")
    last = len(arch.stages) - 1
    stages = []
    for i, s in enumerate(arch.stages):
        keep = fix_first_last_repeats and i in (0, last)
        stages.append(
            replace(
                s,
                repeats=s.repeats if keep else round_repeats(s.repeats, depth, depth_rounding),
                out_channels=round_filters(s.out_channels, width, divisor),
            )
        )
    if isinstance(resolution, int):
        res = resolution  # an exact size
    elif resolution == 1.0:
        res = arch.resolution  # scale(arch) is the identity
    else:
        res = round_resolution(arch.resolution, resolution)
    return replace(
        arch,
        stages=tuple(stages),
        stem=round_filters(arch.stem, width, divisor) if scale_stem_head else arch.stem,
        head=round_filters(arch.head, width, divisor) if scale_stem_head and arch.head else arch.head,
        resolution=res,
        dropout=arch.dropout if dropout is None else dropout,
        name=arch.name if name is None else name,
    )
