"""Named architectures: EfficientNet-B0..B8/L2 (official coefficients) and MnasNet-A1/B1.

Reference parameter counts (1000 classes) from torchvision / timm are kept
next to each preset and asserted by the tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from effnas.errors import UserError
from search_spaces.arch import Arch, load_arch
from search_spaces.codecs import from_block_strings
from search_spaces.scale import scale

EFFICIENTNET_B0_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_se0.25",
    "r2_k3_s22_e6_i16_o24_se0.25",
    "r2_k5_s22_e6_i24_o40_se0.25",
    "r3_k3_s22_e6_i40_o80_se0.25",
    "r3_k5_s11_e6_i80_o112_se0.25",
    "r4_k5_s22_e6_i112_o192_se0.25",
    "r1_k3_s11_e6_i192_o320_se0.25",
)
MNASNET_A1_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_noskip",
    "r2_k3_s22_e6_i16_o24",
    "r3_k5_s22_e3_i24_o40_se0.25",
    "r4_k3_s22_e6_i40_o80",
    "r2_k3_s11_e6_i80_o112_se0.25",
    "r3_k5_s22_e6_i112_o160_se0.25",
    "r1_k3_s11_e6_i160_o320",
)
MNASNET_B1_BLOCKS = (
    "r1_k3_s11_e1_i32_o16_noskip",
    "r3_k3_s22_e3_i16_o24",
    "r3_k5_s22_e3_i24_o40",
    "r3_k5_s22_e6_i40_o80",
    "r2_k3_s11_e6_i80_o96",
    "r4_k5_s22_e6_i96_o192",
    "r1_k3_s11_e6_i192_o320_noskip",
)

# Official hand-set coefficients (width, depth, resolution, dropout). These are
# NOT alpha^phi etc. of the paper's rule (tensorflow/tpu#390): see scaling/.
EFFICIENTNET_OFFICIAL: dict[str, tuple[float, float, int, float]] = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
    "b8": (2.2, 3.6, 672, 0.5),
    "l2": (4.3, 5.3, 800, 0.5),
}

REFERENCE_PARAMS = {
    "efficientnet-b0": 5_288_548,
    "efficientnet-b1": 7_794_184,
    "efficientnet-b2": 9_109_994,
    "efficientnet-b3": 12_233_232,
    "efficientnet-b4": 19_341_616,
    "efficientnet-b5": 30_389_784,
    "efficientnet-b6": 43_040_704,
    "efficientnet-b7": 66_347_960,
    "mnasnet-a1": 3_887_038,
    "mnasnet-b1": 4_383_312,
}
"""torchvision / timm parameter counts with 1000 classes (REFERENCE.md)."""


def efficientnet_b0() -> Arch:
    return from_block_strings(EFFICIENTNET_B0_BLOCKS, name="efficientnet-b0")


def efficientnet(variant: str) -> Arch:
    """EfficientNet-<variant> from B0 with the official coefficients."""
    if variant not in EFFICIENTNET_OFFICIAL:
        raise UserError(f"unknown EfficientNet variant {variant!r}; expected one of {list(EFFICIENTNET_OFFICIAL)}")
    w, d, r, drop = EFFICIENTNET_OFFICIAL[variant]
    return scale(efficientnet_b0(), depth=d, width=w, resolution=r, dropout=drop, name=f"efficientnet-{variant}")


def _mnasnet(blocks: tuple[str, ...], name: str) -> Arch:
    return from_block_strings(blocks, activation="relu", drop_path=0.0, name=name)


_PRESETS: dict[str, Callable[[], Arch]] = {
    **{f"efficientnet-{v}": partial(efficientnet, v) for v in EFFICIENTNET_OFFICIAL},
    "mnasnet-a1": lambda: _mnasnet(MNASNET_A1_BLOCKS, "mnasnet-a1"),
    "mnasnet-b1": lambda: _mnasnet(MNASNET_B1_BLOCKS, "mnasnet-b1"),
}


def preset_names() -> list[str]:
    return list(_PRESETS)


def preset(name: str) -> Arch:
    """A named architecture, e.g. `preset("efficientnet-b0")`."""
    key = name.lower().replace("_", "-")
    if key not in _PRESETS:
        raise UserError(f"unknown preset {name!r}; expected one of {preset_names()}")
    return _PRESETS[key]()


ARCH_SUFFIXES = (".yaml", ".yml", ".json")
BEST_ARCH = "best_arch.yaml"
"""What a search run directory holds its best architecture in (under the key `arch`)."""


def resolve_arch(spec: str) -> Arch:
    """An architecture argument of any command: a preset name, an Arch YAML/JSON file, a
    best_arch.yaml, or a search run directory (its best architecture)."""
    path = Path(spec)
    if path.is_dir():
        if not (path / BEST_ARCH).is_file():
            raise UserError(f"{spec} holds no {BEST_ARCH} (not a search run directory, or no trial completed yet)")
        path = path / BEST_ARCH
    if path.suffix in ARCH_SUFFIXES or path.exists() or os.path.sep in spec:
        if not path.is_file():
            raise UserError(f"architecture file {spec} does not exist")
        from effnas.config import load_yaml

        data = load_yaml(path, "architecture file") if path.suffix != ".json" else None
        if isinstance(data, dict) and isinstance(data.get("arch"), dict):  # a best_arch.yaml
            arch = Arch.from_dict(data["arch"])
            name = f"{path.parent.name}-t{data['trial']}" if "trial" in data else path.parent.name
            return arch if arch.name else arch.replace(name=name)
        return load_arch(str(path))
    if spec in preset_names():
        return preset(spec)
    raise UserError(
        f"{spec!r} is neither a preset ({', '.join(preset_names())}), "
        "an Arch .yaml/.json file nor a search run directory"
    )
