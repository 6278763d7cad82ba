"""Ray for every command that fans work out (`nas search`, `nas fidelity`, `scale grid`: `executor=ray`).

`ray.address=null` starts a local cluster on 127.0.0.1 for the command and shuts
it down after; `ray.address=auto` or `host:port` joins an existing cluster and
leaves it running. Inside a worker, `worker_device()` is the GPU Ray assigned
(through CUDA_VISIBLE_DEVICES) or the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from effnas.errors import UserError

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None
    """null: start a local cluster for this command; auto or host:port: join one."""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    """Fractional (e.g. 0.25) to share one GPU between several small trials."""
    max_concurrent: int = 2
    max_failures: int = 1
    """Retries of a trial whose worker died; then it is recorded as failed."""
    asha: bool = False
    """ASHA early stopping on the per-epoch reward (searches only)."""
    num_cpus: int | None = None
    """CPUs of a cluster started here (null: all)."""
    gpus_by_cost: bool = True
    """`scale family` / `scale grid`: a member's GPU share is gpus_per_trial x its MACs / the base's MACs
    (whole GPUs at most, in steps of 0.05), so small members share a GPU and large ones get their own;
    false: gpus_per_trial for every member."""

    def __post_init__(self) -> None:
        if not self.cpus_per_trial > 0 or not self.gpus_per_trial >= 0 or self.max_concurrent < 1:
            raise UserError("ray.cpus_per_trial must be > 0, ray.gpus_per_trial >= 0, ray.max_concurrent >= 1")
        if self.max_failures < 0:
            raise UserError(f"ray.max_failures must be >= 0, got {self.max_failures}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise UserError(f"ray.num_cpus must be >= 1 or null, got {self.num_cpus}")


def worker_device() -> Any:
    """In a Ray worker: the GPU Ray assigned (through CUDA_VISIBLE_DEVICES) or the CPU, with the
    worker's OMP_NUM_THREADS (Ray sets it from the task's CPUs) as torch's thread count."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def ray_session(rc: RayConfig) -> Iterator[None]:
    """Join `ray.address`, or start a local cluster on 127.0.0.1 and shut it down after."""
    import ray

    if ray.is_initialized():
        yield
        return
    if rc.address:
        try:
            ray.init(address=str(rc.address), log_to_driver=False)
        except ConnectionError as e:
            raise UserError(f"cannot join the Ray cluster at ray.address={rc.address}: {e}") from None
        yield  # leave a joined cluster running
        return
    ray.init(address="local", num_cpus=rc.num_cpus, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")  # fmt: skip
    try:
        yield
    finally:
        ray.shutdown()


def run_tasks(rc: RayConfig, fn: Callable[..., Any], shared: Any, jobs: Sequence[tuple[Any, ...]],
              on_result: Callable[[int, Any], None], gpus: Sequence[float] | None = None) -> None:  # fmt: skip
    """`fn(shared, *job)` for every job as a Ray task (ray.cpus_per_trial / gpus_per_trial each, or `gpus[i]`
    for job i; retried ray.max_failures times if its worker dies), `shared` (the data) put once in the object
    store; `on_result(index, result)` runs here as each task finishes, so the caller can record it at once."""
    import ray

    if not jobs:
        return
    with ray_session(rc):
        task = ray.remote(num_cpus=rc.cpus_per_trial, num_gpus=rc.gpus_per_trial, max_retries=rc.max_failures)(fn)
        ref = ray.put(shared)
        pending = {
            (task.options(num_gpus=gpus[i]) if gpus else task).remote(ref, *job): i for i, job in enumerate(jobs)
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for r in done:
                on_result(pending.pop(r), ray.get(r))
