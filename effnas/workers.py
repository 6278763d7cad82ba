"""Worker processes of one command on one machine (`workers=k` of `nas search` and `nas fidelity`).

Spawned (not forked: CUDA and Ray do not survive a fork), each with its share of
the CPU threads, each killed with its parent, so a command killed by SIGKILL
leaves no training running on. The parent polls while they run (progress, results).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


def set_threads(workers: int) -> None:
    """This process's share of the cores for torch's intra-op threads: the cores are OMP_NUM_THREADS where the
    user set it (torch's own convention, a cap on a shared machine), else all of this machine's."""
    import torch

    cap = os.environ.get("OMP_NUM_THREADS", "")
    cores = int(cap) if cap.isdigit() and int(cap) > 0 else os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // workers))


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_workers(target: Callable[..., None], args: Sequence[tuple[Any, ...]], poll: Callable[[], None],
                every: float = 1.0) -> list[int]:  # fmt: skip
    """`target(*a)` for each `a` in its own spawned process; `poll()` every `every` seconds until all have
    exited (and once after). Returns the non-zero exit codes."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=a) for a in args]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        time.sleep(every)
        poll()
    for p in procs:
        p.join()
    poll()
    return [p.exitcode for p in procs if p.exitcode]


def queue(items: Sequence[Any]) -> Any:
    """A queue of `items` that spawned workers can share (see `take`)."""
    q = mp.get_context("spawn").Queue()
    for item in items:
        q.put(item)
    return q


def take(q: Any) -> Any | None:
    """The next item of a `queue`, None when it is empty."""
    import queue as stdqueue

    try:
        return q.get(timeout=0.5)
    except stdqueue.Empty:
        return None
