"""One way to print progress: logging, through a handler that writes above a tqdm progress bar.

Commands print their results (tables, paths) on stdout; everything else (status,
per-epoch lines, warnings) goes through the `effnas`-family loggers to stderr
and, for commands with a run directory, to its log file.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOGGERS = ("nas", "scaling", "training", "effnas")


class TqdmHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stderr handler whose lines do not break a tqdm progress bar."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


class _Console(logging.Formatter):
    """The message alone; a warning says it is one."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno == logging.WARNING and not text.startswith("warning:"):
            return f"warning: {text}"
        return text


@contextmanager
def logging_to(log_file: Path | None, verbose: int, info_at: int = 2) -> Iterator[None]:
    """INFO and above into `log_file` (with timestamps); on the terminal INFO at verbose >= `info_at`
    (searches: 2, per-epoch lines; scaling: 1, a line per member), else warnings only."""
    handlers: list[logging.Handler] = []
    if log_file is not None:
        f = logging.FileHandler(log_file)
        f.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        f.setLevel(logging.INFO)
        handlers.append(f)
    console = TqdmHandler()
    console.setFormatter(_Console("%(message)s"))
    console.setLevel(logging.INFO if verbose >= info_at else logging.WARNING)
    handlers.append(console)
    loggers = [logging.getLogger(n) for n in LOGGERS]
    for lg in loggers:
        lg.setLevel(logging.INFO)
        lg.propagate = False
        for h in handlers:
            lg.addHandler(h)
    try:
        yield
    finally:
        for lg in loggers:
            for h in handlers:
                lg.removeHandler(h)
        for h in handlers:
            h.close()
