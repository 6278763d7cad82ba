"""The one cost model: exact parameters and multiply-adds from an `Arch`.

`macs` counts convolutions and the classifier (one multiply-add = 1, biases
and BatchNorm, activations, pooling and the SE mean not counted): the papers'
"FLOPs", and what fvcore reports for conv + linear. `params` counts every
trainable parameter of `build(arch)` (BatchNorm affine included).
"""

from __future__ import annotations

from dataclasses import dataclass

from effnas.errors import UserError
from search_spaces.arch import Arch
from search_spaces.plan import BlockSpec, block_specs, conv_out


@dataclass(frozen=True)
class PartCost:
    name: str
    params: int
    macs: int
    out_resolution: int


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    resolution: int
    parts: tuple[PartCost, ...]

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    def table(self) -> str:
        rows = [f"{'part':<10}{'params':>12}{'MACs':>16}{'out res':>9}"]
        rows += [f"{p.name:<10}{p.params:>12,}{p.macs:>16,}{p.out_resolution:>9}" for p in self.parts]
        rows.append(f"{'total':<10}{self.params:>12,}{self.macs:>16,}")
        return "\n".join(rows)


def _conv(cin: int, cout: int, k: int, out_hw: int, groups: int = 1) -> tuple[int, int]:
    """(params without bias, MACs) of a kxk conv producing out_hw x out_hw."""
    w = cout * (cin // groups) * k * k
    return w, w * out_hw * out_hw


def _block(b: BlockSpec, hw: int) -> tuple[int, int, int]:
    out = conv_out(hw, b.stride)
    mid, k = b.mid_channels, b.kernel
    params = macs = 0

    def add(pm: tuple[int, int], bn_channels: int) -> None:
        nonlocal params, macs
        params += pm[0] + 2 * bn_channels
        macs += pm[1]

    if b.block == "mbconv":
        add(_conv(b.in_channels, mid, 1, hw), mid)
        add(_conv(mid, mid, k, out, groups=mid), mid)
    elif b.block == "ds":
        add(_conv(mid, mid, k, out, groups=mid), mid)
    else:
        add(_conv(b.in_channels, mid, k, out), mid)
    if b.se_channels:
        se = b.se_channels
        params += 2 * mid * se + se + mid
        macs += 2 * mid * se
    if b.block != "conv":
        add(_conv(mid, b.out_channels, 1, out), b.out_channels)
    return params, macs, out


def cost(arch: Arch, resolution: int | None = None, num_classes: int = 1000) -> Cost:
    """Params and MACs of `build(arch, num_classes)` at `resolution` (default arch.resolution)."""
    res = arch.resolution if resolution is None else resolution
    if not isinstance(res, int) or res < 1:
        raise UserError(f"resolution must be a positive integer, got {res!r}")
    parts: list[PartCost] = []
    hw = conv_out(res, 2)
    p, m = _conv(3, arch.stem, 3, hw)
    parts.append(PartCost("stem", p + 2 * arch.stem, m, hw))
    stage_totals: dict[int, list[int]] = {}
    for b in block_specs(arch):
        bp, bm, hw = _block(b, hw)
        acc = stage_totals.setdefault(b.stage, [0, 0, 0])
        acc[0] += bp
        acc[1] += bm
        acc[2] = hw
    parts += [PartCost(f"stage{i + 1}", a[0], a[1], a[2]) for i, a in sorted(stage_totals.items())]
    hp = hm = 0
    if arch.head > 0:
        hp, hm = _conv(arch.stages[-1].out_channels, arch.head, 1, hw)
        hp += 2 * arch.head
    hp += arch.features * num_classes + num_classes
    hm += arch.features * num_classes
    parts.append(PartCost("head", hp, hm, 1))
    return Cost(
        params=sum(x.params for x in parts),
        macs=sum(x.macs for x in parts),
        resolution=res,
        parts=tuple(parts),
    )
