"""Compound scaling (EfficientNet): the rule, the alpha/beta/gamma grid, families, the `scale` CLI.

Every rounding of blocks, channels and resolution goes through
`search_spaces.scale`; every count through `search_spaces.cost`.
"""

from scaling.bound import RoundingBound, repeat_block_macs, rounding_bound, scaling_shares
from scaling.compound import (
    PAPER_COEFFICIENTS,
    CompoundCheck,
    Multipliers,
    check_compound,
    compound,
    flops_factor,
    load_coefficients,
    scale_compound,
    validate,
)
from scaling.family import (
    family,
    family_table,
    format_table,
    official_family,
    official_multipliers,
    pure_multipliers,
)
from scaling.grid import Evaluate, axis, grid, grid_points, rank

__all__ = [
    "PAPER_COEFFICIENTS",
    "CompoundCheck",
    "Multipliers",
    "Evaluate",
    "RoundingBound",
    "axis",
    "check_compound",
    "compound",
    "family",
    "family_table",
    "flops_factor",
    "format_table",
    "grid",
    "grid_points",
    "load_coefficients",
    "official_family",
    "official_multipliers",
    "pure_multipliers",
    "rank",
    "repeat_block_macs",
    "rounding_bound",
    "scale_compound",
    "scaling_shares",
    "validate",
]
