"""The run-directory contract of every command that writes, in one place.

    experiments/<run>/
      .effnas          marker: an effnas run directory, and the command that owns it
      .lock            flock held while a command works in the directory
      config.yaml      the resolved config (compared on resume)
      ...              the command's own files (written with `atomic_write` and friends)

`open_run(path, cfg, command, free_keys)` is the one way in: it refuses a path
that is a file, a non-empty folder that is not an effnas run directory, a run
directory of another command, one busy with another process, and one whose
saved config differs outside `free_keys` (the keys a re-run may change, such as
the budget); otherwise it creates the directory, or resumes it, under the lock.
Every file is written whole (temporary file + rename) with mode 0644.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from effnas.errors import UserError

MARKER = ".effnas"
LOCK = ".lock"
CONFIG = "config.yaml"
MARKER_HEADER = "effnas run directory v1"
COMMANDS = ("search", "train", "fidelity", "grid", "family")
COMMAND_NAMES = {"search": "nas search", "train": "nas train", "fidelity": "nas fidelity", "grid": "scale grid",
                 "family": "scale family"}  # fmt: skip


class RunDirError(UserError):
    """A run directory that cannot be used (foreign, corrupt, another command's, config mismatch, busy)."""


def is_run_dir(path: Path) -> bool:
    return (path / MARKER).is_file()


def owner(path: Path) -> str | None:
    """The command that owns `path` (None for a marker written before commands were recorded)."""
    try:
        lines = (path / MARKER).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise RunDirError(f"corrupt run directory {path}: cannot read its {MARKER} marker") from None
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip() == "command":
            return value.strip()
    return None


def flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: config comparison key by key."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def read_config(path: Path, command: str | None = None) -> dict[str, Any]:
    """The saved config of a run directory; RunDirError if missing, foreign, another command's or corrupt."""
    if not path.exists():
        raise RunDirError(f"run directory {path} does not exist")
    if not path.is_dir():
        raise RunDirError(f"run directory {path} exists and is not a directory")
    if not is_run_dir(path):
        raise RunDirError(f"{path} is not an effnas run directory (no {MARKER} marker)")
    found = owner(path)
    if command is not None and found is not None and found != command:
        raise RunDirError(
            f"{path} is a `{COMMAND_NAMES.get(found, found)}` run directory, not a `{COMMAND_NAMES[command]}` one; "
            "use another directory"
        )
    try:
        cfg = yaml.safe_load((path / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise RunDirError(f"corrupt run directory {path}: cannot read {CONFIG} ({type(e).__name__})") from None
    if not isinstance(cfg, dict):
        raise RunDirError(f"corrupt run directory {path}: {CONFIG} is not a mapping")
    return cfg


def has_content(path: Path) -> bool:
    return path.is_dir() and any(p.name != LOCK for p in path.iterdir())


def check_usable(path: Path, command: str) -> None:
    """Refuse a path that is a file, a non-empty folder that is not a run directory of `command`."""
    if path.exists() and not path.is_dir():
        raise RunDirError(f"run directory {path} exists and is not a directory")
    if has_content(path):
        read_config(path, command)


def config_changes(saved: dict[str, Any], cfg: dict[str, Any], free_keys: tuple[str, ...]) -> list[str]:
    """'key: old -> new' for every flattened key that differs, except `free_keys` and the keys below them."""
    old, new = flat(saved), flat(cfg)

    def free(k: str) -> bool:
        return any(k == f or k.startswith(f + ".") for f in free_keys)

    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and not free(k))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]


@contextmanager
def open_run(path: Path, cfg: dict[str, Any], command: str, free_keys: tuple[str, ...] = ()) -> Iterator[bool]:
    """Create `path` for `cfg` or resume it, under its lock; yields True when resuming.

    config.yaml is rewritten (it records the free keys of the latest call, e.g. a larger budget).
    """
    assert command in COMMANDS, command
    check_usable(path, command)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create run directory {path}: {e.strerror}") from None
    with locked(path):
        resumed = has_content(path)
        if resumed:
            changes = config_changes(read_config(path, command), cfg, free_keys)
            if changes:
                raise RunDirError(
                    f"{path} holds a run with a different config ({', '.join(changes[:4])}"
                    f"{', ...' if len(changes) > 4 else ''}); use another run directory"
                )
        else:
            atomic_write(path / MARKER, lambda tmp: Path(tmp).write_text(f"{MARKER_HEADER}\ncommand: {command}\n"))
        write_yaml(path / CONFIG, cfg)
        yield resumed


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory (released even on SIGKILL)."""
    try:
        fd = os.open(path / LOCK, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as e:
        raise RunDirError(f"cannot write in run directory {path}: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirError(
                f"another process is running on {path}; wait for it or use another run directory"
            ) from None
        yield
    finally:
        os.close(fd)


def in_use(path: Path) -> bool:
    """Whether a process holds the run directory's lock now (a running command); creates nothing."""
    try:
        fd = os.open(path / LOCK, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[str], Any]) -> None:
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


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_yaml(path: Path, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def write_table(path: Path, df: Any) -> None:
    """A pandas frame as .parquet or .csv (by the suffix), written whole."""
    if path.suffix == ".csv":
        atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def read_table(path: Path, what: str) -> Any:
    """A parquet/csv table of a run directory; RunDirError if absent or unreadable."""
    import pandas as pd

    if not path.is_file():
        raise RunDirError(f"{path.parent} has no {path.name} yet ({what})")
    try:
        return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    except Exception as e:
        raise RunDirError(f"corrupt {path}: {type(e).__name__}") from None


def append_line(path: Path, line: str) -> None:
    """One whole line appended (O_APPEND, one write), for logs and result caches read line by line."""
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _is_result(line: str) -> bool:
    try:
        rec = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(rec, dict) and "key" in rec and "result" in rec


def read_results(path: Path) -> tuple[dict[str, Any], int]:
    """A result cache (one `{"key": ..., "result": ...}` line per finished piece of work): the results by
    key, and the bytes dropped from a last line a kill or a full disk cut short (that work runs again)."""
    dropped = repair_lines(path, _is_result)
    if not path.is_file():
        return {}, dropped
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if _is_result(ln)]
    return {rec["key"]: rec["result"] for rec in map(json.loads, lines)}, dropped


def append_result(path: Path, key: str, result: Any) -> None:
    append_line(path, json.dumps({"key": key, "result": result}))


def repair_lines(path: Path, valid: Callable[[str], bool]) -> int:
    """Cut a line-oriented file back to its last whole, valid line (a kill or a full disk can leave
    half a record); returns the bytes dropped. Appending after a broken record would make the file
    unreadable, so every resume calls this first."""
    if not path.is_file():
        return 0
    data = path.read_bytes()
    keep = len(data)
    while keep > 0:
        if data[keep - 1 : keep] != b"\n":
            keep = data.rfind(b"\n", 0, keep) + 1
            continue
        start = data.rfind(b"\n", 0, keep - 1) + 1
        line = data[start : keep - 1].decode("utf-8", errors="replace")
        if line.strip() and valid(line):
            break
        keep = start
    if keep < len(data):
        with open(path, "r+b") as f:
            f.truncate(keep)
    return len(data) - keep
