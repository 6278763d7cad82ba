"""Exact codecs between `Arch` and the two block-string formats in the wild.

TF official (EfficientNet / MnasNet):  r1_k3_s11_e1_i32_o16_se0.25[_noskip]
  `e1` is the depthwise-separable block (no expand conv); `e>1` is MBConv.
  Two project extensions, which TF's own decoder ignores: `conv` marks a
  regular-convolution block and `poolskip` the pooling shortcut.
timm:  ds_r1_k3_s1_e1_c16_se0.25 / ir_r2_k3_s2_e6_c24 / cn_r1_k3_s1_c32
  (one-digit stride, output channels `c`, block type prefix; timm's `cn`
  has a residual only with the `skip` token).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from effnas.errors import UserError
from search_spaces.arch import Arch, Stage

_NUM = r"\d+(?:\.\d+)?"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _err(token: str, string: str, why: str) -> ValueError:
    return ValueError(f"bad token {token!r} in block string {string!r}: {why}")


def _int(token: str, value: str, string: str) -> int:
    if not re.fullmatch(r"\d+", value):
        raise _err(token, string, "expected an integer")
    return int(value)


def _float(token: str, value: str, string: str) -> float:
    if not re.fullmatch(_NUM, value):
        raise _err(token, string, "expected a number")
    return float(value)


def _split(string: str) -> list[str]:
    if not isinstance(string, str) or not string.strip():
        raise UserError(f"empty or non-string block string {string!r}")
    tokens = string.strip().split("_")
    if any(t == "" for t in tokens):
        raise UserError(f"empty token (double or trailing '_') in block string {string!r}")
    return tokens


def _stage(string: str, block: str, opts: dict[str, Any], flags: set[str]) -> Stage:
    for key in ("r", "k", "s"):
        if key not in opts:
            raise UserError(f"block string {string!r} is missing the '{key}' token")
    skip = "none" if "noskip" in flags else "pool" if "poolskip" in flags else "identity"
    if "noskip" in flags and "poolskip" in flags:
        raise UserError(f"block string {string!r} has both 'noskip' and 'poolskip'")
    r, k = opts["r"], opts["k"]
    if r < 1:
        raise _err(f"r{r}", string, "repeats must be >= 1")
    if k < 1 or k % 2 == 0:
        raise _err(f"k{k}", string, "kernel must be a positive odd integer")
    se = opts.get("se", 0.0)
    if not 0.0 <= se <= 1.0:
        raise _err(f"se{_fmt(se)}", string, "SE ratio must be in [0, 1]")
    e = opts.get("e", 1.0)
    if block == "mbconv" and e < 1:
        raise _err(f"e{_fmt(e)}", string, "expand ratio must be >= 1")
    if block != "mbconv" and e != 1:
        raise _err(f"e{_fmt(e)}", string, f"a {block} block has expand 1")
    try:
        return Stage(block, r, k, opts["s"], float(e), opts["o"], float(se), skip)
    except ValueError as ex:
        raise UserError(f"block string {string!r}: {ex}") from None


# ---- TF official ---------------------------------------------------------


def decode_block_string(string: str) -> tuple[Stage, int]:
    """One TF block string -> (Stage, its declared input channels)."""
    opts: dict[str, Any] = {}
    flags: set[str] = set()
    for tok in _split(string):
        if tok in ("noskip", "poolskip", "conv"):
            flags.add(tok)
            continue
        m = re.fullmatch(r"(se|[rksieo])(.*)", tok)
        if not m:
            raise _err(tok, string, "unknown key (expected r, k, s, e, i, o, se, noskip)")
        key, val = m.groups()
        if key in opts:
            raise _err(tok, string, f"'{key}' given twice")
        if key == "s":
            if not re.fullmatch(r"\d\d", val):
                raise _err(tok, string, "TF strides have two digits, e.g. s11 or s22")
            if val[0] != val[1]:
                raise _err(tok, string, "non-square strides are not supported")
            opts["s"] = int(val[0])
            if opts["s"] < 1:
                raise _err(tok, string, "stride must be >= 1")
        elif key in ("e", "se"):
            opts[key] = _float(tok, val, string)
        else:
            opts[key] = _int(tok, val, string)
    for key in ("i", "o"):
        if key not in opts:
            raise UserError(f"block string {string!r} is missing the '{key}' token")
    if "e" not in opts:
        raise UserError(f"block string {string!r} is missing the 'e' token")
    block = "conv" if "conv" in flags else "ds" if opts["e"] == 1 else "mbconv"
    return _stage(string, block, opts, flags), opts["i"]


def encode_block_string(stage: Stage, in_channels: int) -> str:
    if stage.block == "mbconv" and stage.expand == 1:
        raise UserError("an MBConv with expand 1 (expand conv kept) has no TF block string; use block 'ds'")
    parts = [f"r{stage.repeats}", f"k{stage.kernel}", f"s{stage.stride}{stage.stride}"]
    parts += [f"e{_fmt(stage.expand)}", f"i{in_channels}", f"o{stage.out_channels}"]
    if stage.se_ratio > 0:
        parts.append(f"se{_fmt(stage.se_ratio)}")
    if stage.block == "conv":
        parts.append("conv")
    if stage.skip == "none":
        parts.append("noskip")
    elif stage.skip == "pool":
        parts.append("poolskip")
    return "_".join(parts)


def from_block_strings(strings: Iterable[str], stem: int | None = None, **arch_fields: Any) -> Arch:
    """TF block strings -> Arch. `stem` defaults to the first string's `i`;
    every string's `i` must equal the previous one's `o`."""
    strings = list(strings)
    if not strings:
        raise UserError("no block strings given")
    stages: list[Stage] = []
    prev_out = stem
    for s in strings:
        stage, i = decode_block_string(s)
        if prev_out is not None and i != prev_out:
            what = "the stem width" if not stages else "the previous block's output"
            raise _err(f"i{i}", s, f"input channels {i} do not match {what} ({prev_out})")
        stages.append(stage)
        prev_out = stage.out_channels
    first_in = decode_block_string(strings[0])[1]
    return Arch(stages=tuple(stages), stem=first_in if stem is None else stem, **arch_fields)


def to_block_strings(arch: Arch) -> list[str]:
    return [encode_block_string(s, i) for s, i in zip(arch.stages, arch.in_channels)]


# ---- timm ----------------------------------------------------------------

_TIMM_BLOCK = {"ds": "ds", "ir": "mbconv", "cn": "conv"}
_TIMM_PREFIX = {v: k for k, v in _TIMM_BLOCK.items()}


def decode_timm_block(string: str) -> Stage:
    tokens = _split(string)
    prefix = tokens[0]
    if prefix not in _TIMM_BLOCK:
        raise _err(prefix, string, f"unknown timm block type (expected one of {sorted(_TIMM_BLOCK)})")
    opts: dict[str, Any] = {}
    flags: set[str] = set()
    for tok in tokens[1:]:
        if tok in ("noskip", "poolskip", "skip"):
            flags.add(tok)
            continue
        m = re.fullmatch(r"(se|[rksec])(.*)", tok)
        if not m:
            raise _err(tok, string, "unknown key (expected r, k, s, e, c, se, noskip)")
        key, val = m.groups()
        if key in opts:
            raise _err(tok, string, f"'{key}' given twice")
        if key == "s" and not re.fullmatch(r"\d", val):
            raise _err(tok, string, "timm strides have one digit, e.g. s1 or s2")
        opts[key] = _float(tok, val, string) if key in ("e", "se") else _int(tok, val, string)
    if "c" not in opts:
        raise UserError(f"block string {string!r} is missing the 'c' token")
    opts["o"] = opts.pop("c")
    block = _TIMM_BLOCK[prefix]
    if block == "conv" and opts.get("se", 0) > 0:
        raise _err(f"se{_fmt(opts['se'])}", string, "timm's cn block has no SE")
    if block == "conv" and "skip" not in flags:
        flags.add("noskip")  # timm's cn has a residual only when `skip` is written
    return _stage(string, block, opts, flags)


def timm_cannot(block: str, se_ratio: float, skip: str) -> str | None:
    """Why timm's EfficientNet cannot build a block of this kind (None: it can); the one rule."""
    if skip == "pool":
        return "timm has no pooling skip"
    if block == "conv" and se_ratio > 0:
        return "timm's cn block has no SE"
    return None


def encode_timm_block(stage: Stage) -> str:
    why = timm_cannot(stage.block, stage.se_ratio, stage.skip)
    if why:
        raise UserError(f"{why}; this Arch cannot be written as a timm arch_def (space=timm searches only what "
                        "timm can build)")  # fmt: skip
    parts = [_TIMM_PREFIX[stage.block], f"r{stage.repeats}", f"k{stage.kernel}", f"s{stage.stride}"]
    if stage.block != "conv":
        parts.append(f"e{_fmt(stage.expand)}")
    parts.append(f"c{stage.out_channels}")
    if stage.se_ratio > 0:
        parts.append(f"se{_fmt(stage.se_ratio)}")
    if stage.block == "conv" and stage.skip == "identity":
        parts.append("skip")
    elif stage.block != "conv" and stage.skip == "none":
        parts.append("noskip")
    return "_".join(parts)


def from_timm_arch_def(arch_def: Sequence[Sequence[str] | str], stem: int = 32, **arch_fields: Any) -> Arch:
    """timm arch_def (list of stages, each a list of block strings) -> Arch.
    A timm stage with several strings becomes several of our stages."""
    flat: list[str] = []
    for entry in arch_def:
        flat.extend([entry] if isinstance(entry, str) else list(entry))
    if not flat:
        raise UserError("empty timm arch_def")
    return Arch(stages=tuple(decode_timm_block(s) for s in flat), stem=stem, **arch_fields)


def to_timm_arch_def(arch: Arch) -> list[list[str]]:
    return [[encode_timm_block(s)] for s in arch.stages]


def to_timm_spec(arch: Arch) -> dict[str, Any]:
    """What timm's `EfficientNet` needs to build this Arch (the arch_def alone would build it with ReLU and
    timm's BatchNorm eps): its arch_def and the constructor settings that differ from timm's defaults, as
    plain data (JSON). `timm_model` builds it; so can a user without this package:

        EfficientNet(block_args=decode_arch_def(s["arch_def"]), num_classes=N, stem_size=s["stem_size"],
                     num_features=s["num_features"], act_layer=get_act_layer(s["act_layer"]),
                     norm_layer=partial(nn.BatchNorm2d, eps=s["bn_eps"], momentum=s["bn_momentum"]),
                     drop_rate=s["drop_rate"], drop_path_rate=s["drop_path_rate"])
    """
    return {
        "arch_def": to_timm_arch_def(arch),
        "stem_size": arch.stem,
        "num_features": arch.head,
        "act_layer": arch.activation,
        "bn_eps": arch.bn_eps,
        "bn_momentum": arch.bn_momentum,
        "drop_rate": arch.dropout,
        "drop_path_rate": arch.drop_path,
        "resolution": arch.resolution,
    }


def timm_model(spec: dict[str, Any], num_classes: int) -> Any:
    """timm's EfficientNet from a `to_timm_spec` (needs timm)."""
    from functools import partial

    from timm.layers.create_act import get_act_layer
    from timm.models._efficientnet_builder import decode_arch_def
    from timm.models.efficientnet import EfficientNet
    from torch import nn

    return EfficientNet(
        block_args=decode_arch_def(spec["arch_def"]),  # type: ignore[no-untyped-call]
        num_classes=num_classes,
        stem_size=spec["stem_size"],
        num_features=spec["num_features"],
        act_layer=get_act_layer(spec["act_layer"]),
        norm_layer=partial(nn.BatchNorm2d, eps=spec["bn_eps"], momentum=spec["bn_momentum"]),
        drop_rate=spec["drop_rate"],
        drop_path_rate=spec["drop_path_rate"],
    )
