"""Config composition and typed sections, in one place.

Every command composes a packaged Hydra config (`effnas/conf/<name>.yaml`) with
`key=value` overrides into a plain dict, then turns each section into a frozen
dataclass with `typed()`. The dataclasses hold the defaults; the YAML files
set only what a preset changes (each section's defaults are registered with
Hydra's ConfigStore from the dataclass, under `<group>/base` or `<name>_base`).

Validation happens once, in the dataclasses' `__post_init__`; every problem is
a `UserError` that names the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from effnas.errors import UserError

CONF_PACKAGE = "effnas.conf"
PATH_KEYS = (("data", "path"), ("data", "test_path"), ("data", "root"))
"""Paths made absolute at composition, so a run resumed from another folder reads the same files."""

T = TypeVar("T")


def conf_names() -> list[str]:
    """The top-level configs a command can be given with `conf=NAME`."""
    return sorted(p.name[:-5] for p in resources.files(CONF_PACKAGE).iterdir() if p.name.endswith(".yaml"))


def compose(conf: str, overrides: list[str], bases: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Hydra compose of effnas/conf/<conf>.yaml with overrides, resolved to a plain dict.

    `bases` are the defaults of the dataclasses, registered as configs under
    their names ("train/base", "search_base") so the YAML defaults lists can
    name them. Paths under data.* become absolute.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.config_store import ConfigStore
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if conf not in conf_names():
        raise UserError(f"unknown conf={conf!r}; available: {', '.join(conf_names())}")
    store = ConfigStore.instance()
    for name, node in (bases or {}).items():
        group, _, leaf = name.rpartition("/")
        store.store(name=leaf, group=group or None, node=dict(node))
    try:
        with initialize_config_module(config_module=CONF_PACKAGE, version_base=None):
            cfg = hydra_compose(config_name=conf, overrides=overrides)
        out = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except (HydraException, OmegaConfBaseException) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
        if "Missing mandatory value" in lines[0]:
            key = getattr(e, "full_key", "") or lines[0].split(":")[-1].strip()
            lines = [f"{key} is required (e.g. {key}=...)"]
        raise UserError(f"bad config: {one_line(lines)}") from None
    assert isinstance(out, dict)
    composed: dict[str, Any] = {str(k): v for k, v in out.items()}
    for section, key in PATH_KEYS:
        v = composed.get(section, {}).get(key)
        if v:
            composed[section][key] = os.path.abspath(os.path.expanduser(str(v)))
    return composed


def one_line(lines: list[str]) -> str:
    """Hydra's whole message on one line: "Could not find 'data/x'; Available options in 'data': a, b"."""
    if "Config search path:" in lines:  # Hydra's own search path, not the user's business
        lines = lines[: lines.index("Config search path:")]
    if len(lines) == 1:
        return lines[0]
    head, rest = lines[0], lines[1:]
    if rest[0].endswith(":"):  # a heading followed by its items (not the dataclass defaults' `base` node)
        return f"{head}; {rest[0]} {', '.join(x for x in rest[1:] if x != 'base')}"
    return "; ".join(lines)


def config_groups() -> dict[str, list[str]]:
    """The config groups a command line can choose from (`data=npz`, `space=timm`, ...) and their options,
    read from the packaged files (no Hydra import: for --help)."""
    groups: dict[str, list[str]] = {}
    for d in sorted(resources.files(CONF_PACKAGE).iterdir(), key=lambda p: p.name):
        if d.is_dir() and not d.name.startswith("_"):
            options = sorted(p.name[:-5] for p in d.iterdir() if p.name.endswith(".yaml"))
            if options:
                groups[d.name] = options
    return groups


def sweep(overrides: list[str]) -> list[list[str]]:
    """Hydra's multirun sweep: every `key=a,b,c` (commas outside brackets and quotes) is a dimension; the
    jobs are the cartesian product, in order (the last key varies fastest)."""
    import itertools

    dims = []
    for o in overrides:
        key, sep, value = o.partition("=")
        values = _top_level_split(value) if sep else [value]
        dims.append([f"{key}={v}" for v in values] if sep else [o])
    return [list(job) for job in itertools.product(*dims)]


def _top_level_split(value: str) -> list[str]:
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(value):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return parts


def split_conf(args: list[str], default: str) -> tuple[str, list[str]]:
    """`conf=NAME` and the remaining `key=value` overrides of a command line."""
    conf, rest = default, []
    for a in args:
        if a.startswith("conf="):
            conf = a.split("=", 1)[1]
        elif "=" not in a and not a.startswith("~"):  # Hydra's ~key deletes a key
            raise UserError(f"expected key=value, got {a!r}")
        else:
            rest.append(a)
    return conf, rest


def default_run_dir(conf: str, overrides: list[str], free_keys: tuple[str, ...]) -> Path:
    """Same command -> same directory (so a re-run resumes); keys in `free_keys` (budget-like) don't count."""
    kept = sorted(o for o in overrides if o.split("=", 1)[0].lstrip("+~").split(".")[0] not in free_keys)
    tag = "-" + hashlib.sha1(" ".join(kept).encode()).hexdigest()[:8] if kept else ""
    return Path("experiments") / f"{conf}{tag}"


# ---- typed sections -------------------------------------------------------------------------


def defaults(cls: type[Any]) -> dict[str, Any]:
    """The dataclass's defaults as a plain mapping (what the ConfigStore base holds)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def typed(cls: type[T], mapping: Mapping[str, Any] | None, section: str) -> T:
    """`cls(**mapping)` with unknown keys refused and values coerced to the fields' types.

    Errors name the key as `section.key`. Validation of the values themselves is
    the dataclass's own `__post_init__`.
    """
    return cls(**typed_fields(cls, mapping, section))


def typed_fields(
    cls: type[Any], mapping: Mapping[str, Any] | None, section: str, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The coerced keyword arguments of `typed`, leaving out the keys in `skip` (sections read apart)."""
    mapping = mapping or {}
    if not isinstance(mapping, Mapping):
        raise UserError(f"{section} must be a mapping of keys, got {mapping!r}")
    known = {f.name for f in dataclasses.fields(cls) if f.init} - set(skip)
    given = {k: v for k, v in mapping.items() if k not in skip}
    unknown = sorted(set(given) - known)
    if unknown:
        where = f"{section} keys" if section else "keys"
        raise UserError(f"unknown {where} {unknown}; expected some of {sorted(known)}")
    hints = typing.get_type_hints(cls)
    return {k: coerce(f"{section}.{k}" if section else k, v, hints[k]) for k, v in given.items()}


def coerce(key: str, value: Any, hint: Any) -> Any:
    """A config value to the field's type (ints for floats, '1e-3' strings for numbers), else a clear error."""
    args = set(typing.get_args(hint)) if isinstance(hint, types.UnionType) else {hint}
    if value is None:
        if type(None) in args:
            return None
        raise UserError(f"{key} must not be null")
    if isinstance(value, bool) or bool in args:
        if bool in args and isinstance(value, bool):
            return value
        raise UserError(f"{key} must be {'true/false' if bool in args else 'a number'}, got {value!r}")
    if float in args and isinstance(value, int | float | str):
        try:
            return float(value)
        except ValueError:
            if str in args:  # a number or a text (e.g. reward.T: 400e6 or 25ms)
                return value
            raise UserError(f"{key} must be a number, got {value!r}") from None
    if int in args:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and str not in args:
            try:
                return int(value)
            except ValueError:
                raise UserError(f"{key} must be an integer, got {value!r}") from None
    if str in args and isinstance(value, str):
        return value
    if any(a in (dict, Mapping) or typing.get_origin(a) in (dict, Mapping) for a in args) and isinstance(
        value, Mapping
    ):
        return dict(value)
    if any(typing.get_origin(a) in (list, tuple) for a in args) and isinstance(value, list | tuple):
        return list(value)
    raise UserError(f"{key} has the wrong type: {value!r}")


def one_of(key: str, value: Any, allowed: tuple[str, ...], what: str = "") -> None:
    """UserError naming the key (and what it selects) unless `value` is one of `allowed`."""
    if value not in allowed:
        raise UserError(f"unknown {what or 'value'} {key}={value!r}; expected one of {', '.join(allowed)}")


def at_least(key: str, value: float, low: float) -> None:
    if not value >= low:
        raise UserError(f"{key} must be >= {low:g}, got {value}")


def load_yaml(path: str | Path, what: str) -> Any:
    """A YAML file's content; UserError naming `what` when it is missing or not YAML."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{what} {p} does not exist")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise UserError(f"cannot read {what} {p}: {type(e).__name__}") from None
