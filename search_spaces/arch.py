"""Architecture as data: a network is a frozen `Arch` of ordered `Stage` rows.

Everything else (codecs, presets, the search space, the scaler) produces an
`Arch`; exactly one builder (`build`) turns it into a module and exactly one
cost model (`cost`) counts it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import yaml

from effnas.errors import UserError

BLOCK_TYPES = ("mbconv", "ds", "conv")
"""`mbconv`: inverted residual (1x1 expand, kxk depthwise, SE, 1x1 project).
`ds`: depthwise-separable (kxk depthwise, SE, 1x1 project); TF's `e1` block.
`conv`: one regular kxk convolution (+ SE)."""

SKIP_TYPES = ("identity", "none", "pool")
"""`identity`: residual add when stride 1 and in == out (TF/timm rule).
`none`: never a residual (TF's `noskip`).
`pool`: a parameter-free shortcut on every block: average pooling with
kernel = stride = block stride (ceil mode) when the stride is > 1, then the
channels are zero-padded (out > in) or truncated to the first `out` channels
(out < in). Identical to `identity` where stride is 1 and in == out."""

ACTIVATIONS = ("silu", "relu")


@dataclass(frozen=True)
class Stage:
    """One stage: `repeats` blocks of one type; only the first has `stride`."""

    block: str
    repeats: int
    kernel: int
    stride: int
    expand: float
    out_channels: int
    se_ratio: float = 0.0
    skip: str = "identity"

    def __post_init__(self) -> None:
        if self.block not in BLOCK_TYPES:
            raise UserError(f"unknown block type {self.block!r}; expected one of {BLOCK_TYPES}")
        if self.skip not in SKIP_TYPES:
            raise UserError(f"unknown skip {self.skip!r}; expected one of {SKIP_TYPES}")
        _check(isinstance(self.repeats, int) and self.repeats >= 1, f"repeats must be >= 1, got {self.repeats}")
        _check(
            isinstance(self.kernel, int) and self.kernel >= 1 and self.kernel % 2 == 1,
            f"kernel must be a positive odd integer, got {self.kernel}",
        )
        _check(isinstance(self.stride, int) and self.stride >= 1, f"stride must be >= 1, got {self.stride}")
        _check(self.expand >= 1, f"expand ratio must be >= 1, got {self.expand}")
        _check(self.block == "mbconv" or self.expand == 1, f"{self.block} block needs expand 1, got {self.expand}")
        _check(
            isinstance(self.out_channels, int) and self.out_channels >= 1,
            f"out_channels must be >= 1, got {self.out_channels}",
        )
        _check(0.0 <= self.se_ratio <= 1.0, f"SE ratio must be in [0, 1], got {self.se_ratio}")


@dataclass(frozen=True)
class Arch:
    """A whole network. `bn_momentum` uses PyTorch's convention (TF's 0.99 == 0.01)."""

    stages: tuple[Stage, ...]
    stem: int = 32
    head: int = 1280
    activation: str = "silu"
    resolution: int = 224
    dropout: float = 0.2
    drop_path: float = 0.2
    bn_eps: float = 1e-3
    bn_momentum: float = 0.01
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        _check(len(self.stages) >= 1, "an Arch needs at least one stage")
        _check(all(isinstance(s, Stage) for s in self.stages), "stages must be Stage objects")
        _check(isinstance(self.stem, int) and self.stem >= 1, f"stem must be >= 1, got {self.stem}")
        _check(isinstance(self.head, int) and self.head >= 0, f"head must be >= 0, got {self.head}")
        _check(self.activation in ACTIVATIONS, f"unknown activation {self.activation!r}; expected {ACTIVATIONS}")
        _check(
            isinstance(self.resolution, int) and self.resolution >= 1,
            f"resolution must be >= 1, got {self.resolution}",
        )
        _check(0.0 <= self.dropout < 1.0, f"dropout must be in [0, 1), got {self.dropout}")
        _check(0.0 <= self.drop_path < 1.0, f"drop_path must be in [0, 1), got {self.drop_path}")
        _check(self.bn_eps > 0, f"bn_eps must be > 0, got {self.bn_eps}")
        _check(0.0 < self.bn_momentum < 1.0, f"bn_momentum must be in (0, 1), got {self.bn_momentum}")

    # ---- derived ----------------------------------------------------------
    @property
    def in_channels(self) -> tuple[int, ...]:
        """Input width of each stage (the stem for the first)."""
        return (self.stem, *(s.out_channels for s in self.stages[:-1]))

    @property
    def num_blocks(self) -> int:
        return sum(s.repeats for s in self.stages)

    @property
    def features(self) -> int:
        """Width fed to the classifier."""
        return self.head if self.head > 0 else self.stages[-1].out_channels

    def replace(self, **changes: Any) -> Arch:
        return replace(self, **changes)

    # ---- dict / YAML / JSON ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stages"] = [asdict(s) for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Arch:
        if not isinstance(d, dict):
            raise UserError(f"an Arch must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        _check(not unknown, f"unknown Arch keys {unknown}; expected a subset of {sorted(known)}")
        _check("stages" in d, "an Arch mapping needs 'stages'")
        stage_keys = {f.name for f in fields(Stage)}
        stages = []
        for i, s in enumerate(d["stages"] or []):
            if not isinstance(s, dict):
                raise UserError(f"stage {i} must be a mapping, got {type(s).__name__}")
            bad = sorted(set(s) - stage_keys)
            _check(not bad, f"stage {i}: unknown keys {bad}; expected a subset of {sorted(stage_keys)}")
            try:
                stages.append(Stage(**s))
            except TypeError as e:
                raise UserError(f"stage {i}: {e}") from None
        rest = {k: v for k, v in d.items() if k != "stages"}
        return cls(stages=tuple(stages), **rest)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> Arch:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise UserError(f"not valid YAML: {str(e).splitlines()[0]}") from None
        if isinstance(data, dict) and "arch" in data and "stages" not in data:
            data = data["arch"]  # files that wrap the Arch with metadata
        return cls.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> Arch:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise UserError(f"not valid JSON: {e}") from None

    # ---- codecs (implemented in codecs.py, one place) ---------------------
    def to_block_strings(self) -> list[str]:
        from search_spaces.codecs import to_block_strings

        return to_block_strings(self)

    def to_timm_arch_def(self) -> list[list[str]]:
        from search_spaces.codecs import to_timm_arch_def

        return to_timm_arch_def(self)


def load_arch(path: str) -> Arch:
    """Read an `Arch` from a YAML or JSON file; ValueError with the path on failure."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UserError(f"cannot read architecture file {path}: {e.strerror}") from None
    try:
        return Arch.from_json(text) if path.endswith(".json") else Arch.from_yaml(text)
    except (ValueError, TypeError) as e:
        raise UserError(f"{path}: {e}") from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)
