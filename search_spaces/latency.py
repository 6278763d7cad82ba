"""Latency lookup tables: the parts a network is made of, keyed like OFA's tables, and an arch's
predicted latency as the sum of its parts' measured times (plus the table's fitted correction).

A part is the stem, one block, or the head (head conv, pooling and classifier). Its key holds everything
that changes its run time at a given input: the block's type and the `BlockSpec`'s widths, kernel, stride,
SE width and shortcut, the input size and the activation, e.g.

    mbconv-input:56x56x24-output:28x28x40-mid:144-kernel:5-stride:2-se:6-skip:none-act:silu

`space_parts` enumerates exactly the parts a search space can produce at one resolution (every stage's
first block for each width its previous stage can have, and one repeated block); nas/latency.py times
them and validates the sums. This module only reads tables: a lookup costs a few tens of microseconds.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from effnas.errors import UserError
from search_spaces.arch import Arch, Stage
from search_spaces.plan import BlockSpec, block_specs, conv_out
from search_spaces.scale import round_filters

FORMAT = "effnas latency table v1"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
"""Time units a target may be written in, as multiples of a millisecond."""


@dataclass(frozen=True)
class Part:
    """One timed piece of a network: `kind` stem | block | head, its key, and what builds it."""

    key: str
    kind: str
    input_hw: int
    channels: int
    """Input channels (3 for the stem)."""
    activation: str
    spec: BlockSpec | None = None
    width: int = 0
    """stem: its output channels; head: the head conv's width (0: none)."""
    num_classes: int = 0


def _block_key(spec: BlockSpec, hw: int, act: str) -> str:
    out = conv_out(hw, spec.stride)
    return (f"{spec.block}-input:{hw}x{hw}x{spec.in_channels}-output:{out}x{out}x{spec.out_channels}"
            f"-mid:{spec.mid_channels}-kernel:{spec.kernel}-stride:{spec.stride}-se:{spec.se_channels}"
            f"-skip:{spec.shortcut}-act:{act}")  # fmt: skip


def stem_part(resolution: int, stem: int, act: str) -> Part:
    hw = conv_out(resolution, 2)
    return Part(f"stem-input:{resolution}x{resolution}x3-output:{hw}x{hw}x{stem}-act:{act}", "stem", resolution, 3,
                act, width=stem)  # fmt: skip


def head_part(hw: int, channels: int, head: int, num_classes: int, act: str) -> Part:
    key = f"head-input:{hw}x{hw}x{channels}-features:{head}-classes:{num_classes}-act:{act}"
    return Part(key, "head", hw, channels, act, width=head, num_classes=num_classes)


def block_part(spec: BlockSpec, hw: int, act: str) -> Part:
    return Part(_block_key(spec, hw, act), "block", hw, spec.in_channels, act, spec=replace(spec, drop_path=0.0))


def arch_parts(arch: Arch, resolution: int, num_classes: int) -> list[Part]:
    """The parts of `build(arch, num_classes)` at `resolution`, in order (stem, blocks, head)."""
    parts = [stem_part(resolution, arch.stem, arch.activation)]
    hw = conv_out(resolution, 2)
    for spec in block_specs(arch):
        parts.append(block_part(spec, hw, arch.activation))
        hw = conv_out(hw, spec.stride)
    parts.append(head_part(hw, arch.stages[-1].out_channels, arch.head, num_classes, arch.activation))
    return parts


@dataclass(frozen=True)
class StageOption:
    """One way a stage can be: its input width, its choices, and the parts it contributes."""

    stage: int
    channels_in: int
    choice: dict[str, Any]
    """op, kernel, se, skip, width (the space's names, without the stage prefix)."""
    channels_out: int
    first: Part
    repeat: Part | None
    """The stage's later blocks (stride 1, input = output width); None where no choice gives two blocks."""


def stage_options(space: Any, resolution: int) -> list[list[StageOption]]:
    """For each stage of `space` (a `SearchSpace`), every option it can take at `resolution`.

    Stages choose independently, so stage i's first block meets every output width stage i-1 can have;
    its repeated blocks (input = output width, stride 1) exist where some layer choice gives >= 2 blocks."""
    from search_spaces.space import CONV_OPS

    base, ch = space.base, space.choices
    act = base.activation
    hw = conv_out(resolution, 2)
    widths_in = {base.stem}
    stages = []
    for i, s in enumerate(base.stages):
        repeats = max(max(space.min_layers, s.repeats + int(d)) for d in ch["layers"])
        options = []
        for op, k, se, skip, width, cin in itertools.product(ch["op"], ch["kernel"], ch["se"], ch["skip"],
                                                                ch["width"], sorted(widths_in)):  # fmt: skip
            block, expand = CONV_OPS[op]
            cout = round_filters(s.out_channels, float(width), space.divisor)
            stage = Stage(block, min(2, repeats), int(k), s.stride, expand, cout, float(se), str(skip))
            specs = block_specs(replace(base, stages=(stage,), stem=cin))
            first = block_part(replace(specs[0], stage=i), hw, act)
            repeat = block_part(replace(specs[1], stage=i), conv_out(hw, s.stride), act) if len(specs) > 1 else None
            choice = {"op": op, "kernel": k, "se": se, "skip": skip, "width": width}
            options.append(StageOption(i, cin, choice, cout, first, repeat))
        stages.append(options)
        hw = conv_out(hw, s.stride)
        widths_in = {o.channels_out for o in options}
    return stages


def final_hw(space: Any, resolution: int) -> int:
    hw = conv_out(resolution, 2)
    for s in space.base.stages:
        hw = conv_out(hw, s.stride)
    return hw


def space_parts(space: Any, resolution: int, num_classes: int) -> dict[str, Part]:
    """Every part a point of `space` (a `SearchSpace`) can contain at `resolution`, by key."""
    base = space.base
    parts = {p.key: p for p in [stem_part(resolution, base.stem, base.activation)]}
    stages = stage_options(space, resolution)
    for options in stages:
        for o in options:
            parts[o.first.key] = o.first
            if o.repeat is not None:
                parts[o.repeat.key] = o.repeat
    hw = final_hw(space, resolution)
    for cin in sorted({o.channels_out for o in stages[-1]}):
        p = head_part(hw, cin, base.head, num_classes, base.activation)
        parts[p.key] = p
    return parts


def parse_time(value: Any, key: str = "reward.T") -> float:
    """'25ms', '800us', '0.02 s' -> milliseconds; a number without a unit or a time <= 0 is refused."""
    text = str(value).strip()
    unit = next((u for u in sorted(UNITS, key=len, reverse=True) if text.endswith(u)), None)
    if isinstance(value, bool) or unit is None:
        raise UserError(f"{key}={value!r} has no time unit; write it as e.g. {key}=25ms (units: us, ms, s)")
    try:
        number = float(text[: -len(unit)])
    except ValueError:
        raise UserError(f"{key}={value!r} is not a time; write it as e.g. {key}=25ms") from None
    if not (math.isfinite(number) and number > 0):
        raise UserError(f"{key} must be a time > 0, got {value!r}")
    return number * UNITS[unit]


@dataclass
class LatencyTable:
    """A table file: `header` (device, backend, versions, settings, space), `entries` (key -> median ms and
    its spread) and an optional `correction` (`measured = a + b * sum`, fitted by `nas latency validate`)."""

    header: dict[str, Any]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    correction: dict[str, Any] | None = None
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "header": self.header, "correction": self.correction, "entries": self.entries}

    @property
    def sha256(self) -> str:
        """The hash of what predictions depend on (header, entries and correction), as a run stores it."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def complete(self) -> bool:
        return bool(self.header.get("complete"))

    def describe(self) -> str:
        h = self.header
        return (f"{self.path or 'table'}: {len(self.entries)} entries, space {h.get('space')!r} at "
                f"{h.get('resolution')} px, {h.get('device')}, backend {h.get('backend')}, batch {h.get('batch')}, "
                f"{h.get('threads')} thread(s)")  # fmt: skip

    def part_ms(self, parts: list[Part]) -> list[float]:
        """Each part's median time; UserError naming the first part the table lacks."""
        out = []
        for i, p in enumerate(parts):
            e = self.entries.get(p.key)
            if e is None:
                where = f"block {i} (stage {p.spec.stage + 1})" if p.spec is not None else p.kind  # blocks from 1
                h = self.header
                raise UserError(f"the latency table {self.path or ''} has no entry for {where}: {p.key} (built for "
                                f"space {h.get('space')!r} at {h.get('resolution')} px; build one for this space: "
                                "nas latency build-table)")  # fmt: skip
            out.append(float(e["ms"]))
        return out

    def table_sum(self, arch: Arch) -> float:
        """The plain sum of the arch's parts at the table's resolution and classes, in ms."""
        return math.fsum(self.part_ms(arch_parts(arch, int(self.header["resolution"]),
                                                 int(self.header["num_classes"]))))  # fmt: skip

    def predict(self, arch: Arch) -> float:
        """Predicted latency in ms: the sum, corrected where the table carries a fitted correction."""
        s = self.table_sum(arch)
        c = self.correction
        return float(c["a"] + c["b"] * s) if c else s


def read_table(path: str | Path) -> LatencyTable:
    """A table file; one UserError naming the file when it is missing or not a table."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"latency table {p} does not exist (build one: nas latency build-table out={p})")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read latency table {p}: {type(e).__name__}") from None
    if not isinstance(d, Mapping) or d.get("format") != FORMAT or not isinstance(d.get("entries"), Mapping):
        raise UserError(f"{p} is not a latency table ({FORMAT!r} written by nas latency build-table)")
    return LatencyTable(dict(d["header"]), dict(d["entries"]), d.get("correction"), str(p))


@lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int, size: int) -> LatencyTable:
    return read_table(path)


def load_table(path: str | Path) -> LatencyTable:
    """`read_table`, cached while the file is unchanged (a search costs each trial from it)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return read_table(p)
    return _cached(str(p), st.st_mtime_ns, st.st_size)


def check_table_for(table: LatencyTable, space: Any, resolution: int, num_classes: int) -> None:
    """Refuse a table that cannot cost every point of `space` (another space, resolution or classifier),
    naming what differs, or one whose build has not finished."""
    h = table.header
    if int(h.get("resolution", -1)) != resolution or int(h.get("num_classes", -1)) != num_classes:
        raise UserError(
            f"latency table {table.path} was built at {h.get('resolution')} px with "
            f"{h.get('num_classes')} classes, the reward counts at {resolution} px with {num_classes}"
        )
    if not table.complete:
        raise UserError(f"latency table {table.path} is not complete ({len(table.entries)} entries): rerun the "
                        "nas latency build-table command that wrote it to finish it")  # fmt: skip
    missing = [k for k in space_parts(space, resolution, num_classes) if k not in table.entries]
    if missing:
        raise UserError(f"latency table {table.path} (space {h.get('space')!r}) lacks {len(missing)} parts of "
                        f"space {space.name!r}, e.g. {missing[0]}; build a table for this space")  # fmt: skip
