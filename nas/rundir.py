"""Run directory I/O, in one place: create, validate, lock, and the files in it.

experiments/<run>/
  .effnas            marker: this is an effnas run directory
  config.yaml        the resolved config
  study.journal      the Optuna storage (journal file, multi-process safe)
  trials.parquet     one row per trial
  best_arch.yaml     the best architecture (+ block strings, timm arch_def, scores)
  log.txt            the log
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

MARKER = ".effnas"
CONFIG = "config.yaml"
STORAGE = "study.journal"
TRIALS = "trials.parquet"
BEST = "best_arch.yaml"
LOG = "log.txt"

RESUME_MAY_CHANGE = ("trials", "workers", "verbose", "device", "run", "executor", "ray")
"""Keys a re-run may change without starting a new run (e.g. more trials)."""


class RunDirError(ValueError):
    """A run directory that cannot be used (foreign, corrupt, config mismatch, busy)."""


def is_run_dir(path: Path) -> bool:
    return (path / MARKER).is_file()


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def read_config(path: Path) -> dict[str, Any]:
    """The saved config of a run directory; RunDirError if missing, foreign or corrupt."""
    if not path.is_dir():
        raise RunDirError(f"run directory {path} does not exist")
    if not is_run_dir(path):
        raise RunDirError(f"{path} is not an effnas run directory (no {MARKER} marker)")
    try:
        cfg = yaml.safe_load((path / CONFIG).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise RunDirError(f"corrupt run directory {path}: cannot read {CONFIG} ({type(e).__name__})") from None
    if not isinstance(cfg, dict):
        raise RunDirError(f"corrupt run directory {path}: {CONFIG} is not a mapping")
    return cfg


def _has_content(path: Path) -> bool:
    return path.is_dir() and any(p.name != ".lock" for p in path.iterdir())


def check_usable(path: Path) -> None:
    """Refuse a path that is a file, or a non-empty folder that is not a run directory."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {path} exists and is not a directory")
    if _has_content(path):
        read_config(path)


def prepare(path: Path, cfg: dict[str, Any]) -> bool:
    """Create `path` for `cfg`, or check it belongs to the same run. Returns True if resuming."""
    check_usable(path)
    if _has_content(path):
        saved = read_config(path)
        old, new = _flat(saved), _flat(cfg)
        diff = sorted(
            k for k in set(old) | set(new) if old.get(k) != new.get(k) and k.split(".")[0] not in RESUME_MAY_CHANGE
        )
        if diff:
            shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
            raise RunDirError(f"{path} holds a run with a different config ({shown}); use another run= directory")
        write_yaml(path / CONFIG, cfg)  # records the new budget / workers
        return True
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("effnas run directory v1\n")
    write_yaml(path / CONFIG, cfg)
    return False


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory (released even on SIGKILL)."""
    fd = os.open(path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(f"another process is running on {path}; wait for it or use another run=") from None
        yield
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Any) -> None:
    """`write(tmp_path)` then rename over `path`: a kill leaves the old file or the new one, never half of one.
    The file gets the usual 0644 mode (mkstemp creates 0600, which would hide results from other users)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_yaml(path: Path, data: Any) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(data, f, sort_keys=False)

    atomic_write(path, w)


def write_parquet(path: Path, df: pd.DataFrame) -> None:
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def read_trials(path: Path) -> pd.DataFrame:
    """trials.parquet of a run directory (RunDirError if absent or unreadable)."""
    read_config(path)
    f = path / TRIALS
    if not f.is_file():
        raise RunDirError(f"{path} has no {TRIALS} yet (no trial has finished)")
    try:
        return pd.read_parquet(f)
    except Exception as e:
        raise RunDirError(f"corrupt {f}: {type(e).__name__}") from None


def storage_path(path: Path) -> Path:
    return path / STORAGE
