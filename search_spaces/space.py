"""MnasNet's factorized hierarchical search space, as data.

A base skeleton (stages, strides, widths) plus per-stage choices, read from a
YAML mapping (see conf/space/mnasnet.yaml). Every stage picks independently:
ConvOp, kernel, SE ratio, skip, width multiplier and layer delta. A point of
the space has three equal forms with the same names: an `Arch`, a dict of
named choices (the Optuna params and the `trials.parquet` columns) and a
fixed-length integer vector (for controllers, surrogates and analysis).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from effnas.errors import UserError
from search_spaces.arch import SKIP_TYPES, Arch, Stage
from search_spaces.codecs import from_block_strings
from search_spaces.presets import preset
from search_spaces.scale import round_filters

# ConvOp name -> (block type, expand ratio)
CONV_OPS: dict[str, tuple[str, float]] = {
    "conv": ("conv", 1.0),
    "ds": ("ds", 1.0),
    "mbconv3": ("mbconv", 3.0),
    "mbconv6": ("mbconv", 6.0),
}
DIMENSIONS = ("op", "kernel", "se", "skip", "width", "layers")


class Trial(Protocol):
    """The part of `optuna.Trial` the space needs (kept duck-typed on purpose)."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class SearchSpace:
    base: Arch
    choices: Mapping[str, tuple[Any, ...]]
    min_layers: int = 1
    divisor: int = 8
    name: str = "mnasnet"

    def __post_init__(self) -> None:
        missing = [d for d in DIMENSIONS if d not in self.choices]
        extra = [d for d in self.choices if d not in DIMENSIONS]
        if missing or extra:
            raise UserError(f"space choices need exactly {list(DIMENSIONS)}; missing {missing}, unknown {extra}")
        for d, values in self.choices.items():
            if not values:
                raise UserError(f"space dimension {d!r} has no choices")
        bad = [op for op in self.choices["op"] if op not in CONV_OPS]
        if bad:
            raise UserError(f"unknown ConvOp {bad}; expected some of {list(CONV_OPS)}")
        rules: dict[str, tuple[Callable[[Any], bool], str]] = {
            "kernel": (lambda k: isinstance(k, int) and k >= 1 and k % 2 == 1, "odd integers >= 1"),
            "se": (lambda r: isinstance(r, int | float) and 0 <= r <= 1, "ratios in [0, 1]"),
            "skip": (lambda s: s in SKIP_TYPES, f"some of {list(SKIP_TYPES)}"),
            "width": (lambda w: isinstance(w, int | float) and w > 0, "multipliers > 0"),
            "layers": (lambda n: isinstance(n, int) and not isinstance(n, bool), "integers (layer deltas)"),
        }
        for dim, (ok, what) in rules.items():
            wrong = [v for v in self.choices[dim] if not ok(v)]
            if wrong:
                raise UserError(f"space choices {dim}: {wrong} are not {what}")
        if self.min_layers < 1 or self.divisor < 1:
            raise UserError(f"space min_layers and divisor must be >= 1, got {self.min_layers} and {self.divisor}")
        object.__setattr__(self, "choices", {d: tuple(self.choices[d]) for d in DIMENSIONS})

    def timm_incompatible(self) -> list[str]:
        """Why some points of this space cannot be exported to timm (empty: every point can)."""
        from search_spaces.codecs import timm_cannot

        kinds = {timm_cannot(CONV_OPS[op][0], se, skip) for op in self.choices["op"] for se in self.choices["se"]
                 for skip in self.choices["skip"]}  # fmt: skip
        return sorted(k for k in kinds if k)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchSpace:
        allowed = {"name", "base", "choices", "min_layers", "divisor", "resolution"}
        unknown = sorted(set(d) - allowed)
        if unknown:
            raise UserError(f"unknown search-space keys {unknown}; expected some of {sorted(allowed)}")
        base_spec = d.get("base", "efficientnet-b0")
        base = preset(base_spec) if isinstance(base_spec, str) else from_block_strings(list(base_spec))
        if d.get("resolution"):
            base = replace(base, resolution=int(d["resolution"]))
        return cls(
            base=base,
            choices={k: tuple(v) for k, v in dict(d.get("choices", {})).items()},
            min_layers=int(d.get("min_layers", 1)),
            divisor=int(d.get("divisor", 8)),
            name=str(d.get("name", "mnasnet")),
        )

    # ---- names and size --------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.base.stages)

    def param_names(self) -> list[str]:
        """Names of the choices, in vector order: s1_op, s1_kernel, ..., s7_layers."""
        return [f"s{i + 1}_{d}" for i in range(self.num_stages) for d in DIMENSIONS]

    def cardinalities(self) -> list[int]:
        return [len(self.choices[d]) for _ in range(self.num_stages) for d in DIMENSIONS]

    @property
    def size(self) -> int:
        """Number of points (distinct choice vectors)."""
        return math.prod(self.cardinalities())

    @property
    def num_archs(self) -> int:
        """Number of distinct architectures: smaller than `size` where a layer delta is
        clamped to `min_layers` (e.g. -1 and 0 on a one-layer stage give the same Arch)."""
        per_stage = math.prod(len(self.choices[d]) for d in DIMENSIONS if d != "layers")
        return math.prod(
            per_stage * len({max(self.min_layers, s.repeats + n) for n in self.choices["layers"]})
            for s in self.base.stages
        )

    # ---- conversions -----------------------------------------------------
    def to_arch(self, params: Mapping[str, Any]) -> Arch:
        stages = []
        for i, base in enumerate(self.base.stages):
            p = {d: params[f"s{i + 1}_{d}"] for d in DIMENSIONS}
            for d, v in p.items():
                if v not in self.choices[d]:
                    raise UserError(f"s{i + 1}_{d}={v!r} is not a choice of the space {self.choices[d]}")
            block, expand = CONV_OPS[p["op"]]
            stages.append(
                Stage(
                    block=block,
                    repeats=max(self.min_layers, base.repeats + int(p["layers"])),
                    kernel=int(p["kernel"]),
                    stride=base.stride,
                    expand=expand,
                    out_channels=round_filters(base.out_channels, float(p["width"]), self.divisor),
                    se_ratio=float(p["se"]),
                    skip=str(p["skip"]),
                )
            )
        return replace(self.base, stages=tuple(stages), name="")

    def params_of(self, arch: Arch) -> dict[str, Any]:
        """The named choices that produce `arch` (the first, where several do);
        ValueError if it is not a point of the space."""
        if len(arch.stages) != self.num_stages:
            raise UserError(f"arch has {len(arch.stages)} stages, the space has {self.num_stages}")
        params: dict[str, Any] = {}
        for i, (s, base) in enumerate(zip(arch.stages, self.base.stages)):
            op = next((k for k, v in CONV_OPS.items() if v == (s.block, s.expand) and k in self.choices["op"]), None)
            width = next(
                (
                    w
                    for w in self.choices["width"]
                    if round_filters(base.out_channels, w, self.divisor) == s.out_channels
                ),
                None,
            )
            layers = next(
                (n for n in self.choices["layers"] if max(self.min_layers, base.repeats + n) == s.repeats), None
            )
            found = {"op": op, "kernel": s.kernel, "se": s.se_ratio, "skip": s.skip, "width": width, "layers": layers}
            for d, v in found.items():
                if v is None or v not in self.choices[d]:
                    raise UserError(f"stage {i + 1} of the arch is not in the space: no {d} choice matches")
                params[f"s{i + 1}_{d}"] = self.choices[d][self.choices[d].index(v)]
        if self.to_arch(params) != replace(arch, name=""):
            raise UserError("arch differs from the space's base outside the searched choices")
        return params

    def encode(self, params_or_arch: Mapping[str, Any] | Arch) -> list[int]:
        params = self.params_of(params_or_arch) if isinstance(params_or_arch, Arch) else params_or_arch
        return [self.choices[n.split("_", 1)[1]].index(params[n]) for n in self.param_names()]

    def decode(self, vector: Sequence[int]) -> dict[str, Any]:
        names, cards = self.param_names(), self.cardinalities()
        if len(vector) != len(names):
            raise UserError(f"vector has {len(vector)} entries, the space needs {len(names)}")
        out = {}
        for n, c, v in zip(names, cards, vector):
            if not 0 <= int(v) < c:
                raise UserError(f"{n}: index {v} out of range 0..{c - 1}")
            out[n] = self.choices[n.split("_", 1)[1]][int(v)]
        return out

    # ---- sampling ----------------------------------------------------------
    def sample(self, trial: Trial) -> tuple[Arch, dict[str, Any]]:
        """Ask `trial` for every choice; returns the Arch and the params."""
        params = {n: trial.suggest_categorical(n, list(self.choices[n.split("_", 1)[1]])) for n in self.param_names()}
        return self.to_arch(params), params

    def random(self, rng: random.Random) -> dict[str, Any]:
        return self.decode([rng.randrange(c) for c in self.cardinalities()])


def load_space(path: str) -> SearchSpace:
    """Read a search space from a YAML file; ValueError naming the file on failure."""
    from effnas.config import load_yaml

    data = load_yaml(path, "search space")
    if data is not None and not isinstance(data, Mapping):
        raise UserError(f"{path}: a search space is a mapping, got {type(data).__name__}")
    try:
        return SearchSpace.from_dict(data or {})
    except (ValueError, TypeError, KeyError) as e:
        raise UserError(f"{path}: {e}") from None
