"""Architecture as data: `Arch`, block-string codecs, presets, the MnasNet-style
search space, the one PyTorch builder and the one analytic cost model."""

from search_spaces.arch import ACTIVATIONS, BLOCK_TYPES, SKIP_TYPES, Arch, Stage, load_arch
from search_spaces.builder import build
from search_spaces.codecs import from_block_strings, from_timm_arch_def, to_block_strings, to_timm_arch_def
from search_spaces.cost import Cost, PartCost, cost
from search_spaces.presets import REFERENCE_PARAMS, preset, preset_names, resolve_arch
from search_spaces.scale import round_filters, round_repeats, scale
from search_spaces.space import CONV_OPS, SearchSpace, load_space

__all__ = [
    "ACTIVATIONS",
    "BLOCK_TYPES",
    "CONV_OPS",
    "REFERENCE_PARAMS",
    "SKIP_TYPES",
    "Arch",
    "Cost",
    "PartCost",
    "SearchSpace",
    "Stage",
    "build",
    "cost",
    "from_block_strings",
    "from_timm_arch_def",
    "load_arch",
    "load_space",
    "preset",
    "preset_names",
    "resolve_arch",
    "round_filters",
    "round_repeats",
    "scale",
    "to_block_strings",
    "to_timm_arch_def",
]
