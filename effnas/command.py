"""What the `nas` and `scale` entry points share: one-line argparse errors and the exit-code rule.

- a `UserError` (bad input) or an OSError on a user's path: one `error:` line on stderr, exit 2;
- Ctrl-C or SIGTERM: one line saying how to resume, exit 130 / 143;
- anything else is a bug in our code: its traceback, exit 1.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from effnas.errors import UserError


class Parser(argparse.ArgumentParser):
    """argparse with its errors in the same one-line form as every other user error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_main(func: Callable[[], int]) -> int:
    """Call a command; map user errors and interrupts to one line and an exit code."""
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return func()
    except UserError as e:
        print(f"error: {' '.join(str(e).split()) or type(e).__name__}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or type(e).__name__}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
