"""Model families: a base scaled at phi = 0, 1, 2, ...

`family` applies the paper's pure rule (alpha^phi, beta^phi, gamma^phi);
`official_family` returns the published EfficientNet-B0..B7, whose
coefficients are hand-set and are NOT the pure rule (tensorflow/tpu#390).
`family_table` counts each member against the base.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from effnas.errors import UserError
from scaling.compound import Multipliers, compound, scale_compound
from search_spaces import Arch, cost, preset
from search_spaces.presets import EFFICIENTNET_OFFICIAL

Member = tuple[int, Arch]
"""(phi, the scaled Arch)."""

FamilyMultipliers = Mapping[int, Multipliers]
"""phi -> nominal (depth, width, resolution factor) before any rounding."""

OFFICIAL_PHIS = range(0, 9)
"""phi i is EfficientNet-B<i>; B0..B8 exist."""

TABLE_COLUMNS = [
    "phi",
    "name",
    "width",
    "depth",
    "resolution",
    "blocks",
    "params",
    "macs",
    "macs_ratio",
    "ideal_ratio",
    "two_pow_phi",
]


def _phis(phis: Iterable[int]) -> list[int]:
    out = list(phis)
    if not out:
        raise UserError("a family needs at least one phi")
    for p in out:
        if isinstance(p, bool) or not isinstance(p, int) or p < 0:
            raise UserError(f"phi must be an integer >= 0, got {p!r}")
    return out


MAX_BLOCKS = 2_000
MAX_CHANNELS = 100_000
MAX_RESOLUTION = 8_192
"""A member past any of these is refused: far beyond B7/L2 (55 blocks, 3,840 channels, 800 px)."""


def family(
    base: Arch, alpha: float, beta: float, gamma: float, phis: Iterable[int] = range(0, 8), **scale_options: Any
) -> list[Member]:
    """`base` scaled by the pure compound rule at each phi (phi 0 is the base, renamed)."""
    out = []
    for p in _phis(phis):
        d, w, r = compound(alpha, beta, gamma, p)
        blocks = sum(math.ceil(s.repeats * d) for s in base.stages)
        channels = max(s.out_channels for s in base.stages) * w
        if blocks > MAX_BLOCKS or channels > MAX_CHANNELS or base.resolution * r > MAX_RESOLUTION:
            raise UserError(
                f"phi={p} scales {base.name or 'the base'} to about {blocks:,} blocks, {channels:,.0f} channels and "
                f"{base.resolution * r:,.0f} px (at most {MAX_BLOCKS:,} / {MAX_CHANNELS:,} / {MAX_RESOLUTION:,}): "
                "use smaller phis"
            )
        out.append((p, scale_compound(base, alpha, beta, gamma, p, **scale_options)))
    return out


def pure_multipliers(
    alpha: float, beta: float, gamma: float, phis: Iterable[int] = range(0, 8)
) -> dict[int, Multipliers]:
    """phi -> (depth, width, resolution factor) of the pure rule."""
    return {p: compound(alpha, beta, gamma, p) for p in _phis(phis)}


def official_family(phis: Iterable[int] = range(0, 8)) -> list[Member]:
    """EfficientNet-B<phi> presets (official hand-set coefficients)."""
    return [(p, preset(f"efficientnet-b{p}")) for p in _official_phis(phis)]


def _official_phis(phis: Iterable[int]) -> list[int]:
    wanted = _phis(phis)
    bad = [p for p in wanted if p not in OFFICIAL_PHIS]
    if bad:
        raise UserError(f"official EfficientNet variants exist for phi 0..8 (B0..B8), got phi {bad}")
    return wanted


def official_multipliers(phis: Iterable[int] = range(0, 8)) -> dict[int, Multipliers]:
    """phi -> (depth, width, resolution / 224) of the official table (stored there in TF's order:
    width, depth, resolution, dropout)."""
    b0_res = EFFICIENTNET_OFFICIAL["b0"][2]
    out = {}
    for p in _official_phis(phis):
        w, d, res, _ = EFFICIENTNET_OFFICIAL[f"b{p}"]
        out[p] = Multipliers(depth=d, width=w, resolution=res / b0_res)
    return out


def family_table(members: Sequence[Member], base: Arch, multipliers: FamilyMultipliers | None = None) -> pd.DataFrame:
    """One row per member: nominal width/depth, realized resolution and blocks, cost vs `base`.

    `macs_ratio` = MACs(member at its resolution) / MACs(base at its
    resolution) after rounding; `ideal_ratio` = depth * width^2 * r^2 of the
    nominal multipliers (for the pure rule: (alpha beta^2 gamma^2)^phi);
    `two_pow_phi` is the paper's "about 2^phi". Without `multipliers` the
    nominal columns are NaN.
    """
    c0 = cost(base)
    rows = []
    for phi, arch in members:
        c = cost(arch)
        d, w, r = (multipliers or {}).get(phi, Multipliers(math.nan, math.nan, math.nan))
        rows.append(
            {
                "phi": phi,
                "name": arch.name,
                "width": w,
                "depth": d,
                "resolution": arch.resolution,
                "blocks": arch.num_blocks,
                "params": c.params,
                "macs": c.macs,
                "macs_ratio": c.macs / c0.macs,
                "ideal_ratio": d * w**2 * r**2,
                "two_pow_phi": 2**phi,
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def format_table(table: pd.DataFrame) -> str:
    """Human-readable: params with separators, MACs in G, ratios to 3 decimals."""
    formatters = {
        "params": "{:,}".format,
        "macs": lambda m: f"{m / 1e9:.4f}G",
        "width": "{:.4f}".format,
        "depth": "{:.4f}".format,
        "product": "{:.4f}".format,
        "distance": "{:.4f}".format,
        "macs_ratio": "{:.3f}".format,
        "ideal_ratio": "{:.3f}".format,
    }
    return table.to_string(index=False, formatters={k: v for k, v in formatters.items() if k in table.columns})
