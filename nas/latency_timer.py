"""How `nas latency` times a part or a network on this machine's device: the build-table settings, the one
timing rule, and the `Timer` that builds parts with the one builder and times them per backend.

Timing (one rule, `repeat`): the part in eval mode under `torch.inference_mode`, `warmup` calls, then calls
until the 95% distribution-free confidence interval of the median (order statistics) is within `rel_ci` of
it, between `min_repeats` and `max_repeats`; the median and the interquartile range are kept. In-network
timing stamps the clock after each part of a whole network on the same calls. The C library's malloc
thresholds are pinned first (`pin_malloc`).
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from effnas.config import at_least, one_of
from effnas.errors import UserError
from search_spaces.latency import Part

BACKENDS = ("torch", "torchscript", "onnxruntime")
METHODS = ("in-network", "isolated")
SETTINGS = ("method", "contexts", "warmup", "min_repeats", "max_repeats", "rel_ci")
"""The timing settings a table records; a resumed build must use the same."""


@dataclass(frozen=True)
class TableConfig:
    """`nas latency build-table`'s keys."""

    space: str = "mnasnet"
    """A space of effnas/conf/space/ (mnasnet, timm) or a space YAML file."""
    out: str = ""
    """The table file; default experiments/latency/<space>-<device>-<backend>-b<batch>-<resolution>.json."""
    backend: str = "torch"
    """torch (eager) | torchscript (traced, frozen, optimised for inference: BatchNorm folded) | onnxruntime."""
    method: str = "auto"
    """in-network: each part timed inside whole networks of the space (timestamps between its parts, in
    `contexts` networks each); isolated: each part alone. auto: in-network for torch, isolated otherwise
    (a compiled graph has no boundaries between parts to time)."""
    contexts: int = 2
    """in-network: networks each part is timed in, at least (a covering plan of the space's points)."""
    device: str = "cpu"
    """cpu | cuda | cuda:N."""
    batch: int = 1
    threads: int = 1
    """CPU threads (torch and onnxruntime); 0: torch's current setting. One by default, as MnasNet measured
    on one core of its phone: on this project's shared 2-core machine two threads' timings of one network
    disagree by more than +-10% between passes far more often (bench/RESULTS.md)."""
    resolution: int = 224
    """The resolution the reward counts at (reward.resolution)."""
    num_classes: int = 1000
    """The classifier width the reward counts with (reward.num_classes)."""
    warmup: int = 5
    min_repeats: int = 10
    max_repeats: int = 30
    rel_ci: float = 0.02
    """Stop timing a part when the 95% confidence interval of its median is within +-rel_ci of it."""

    @property
    def how(self) -> str:
        """The timing method in use (auto resolved)."""
        return self.method if self.method != "auto" else "in-network" if self.backend == "torch" else "isolated"

    def __post_init__(self) -> None:
        one_of("backend", self.backend, BACKENDS, "latency backend")
        one_of("method", self.method, ("auto", *METHODS), "timing method")
        if self.method == "in-network" and self.backend != "torch":
            raise UserError(f"method=in-network times parts inside eager torch networks; backend={self.backend} "
                            "compiles the whole graph: use method=isolated")  # fmt: skip
        at_least("contexts", self.contexts, 1)
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise UserError(f"device must be cpu or cuda[:N], got {self.device!r}")
        for k in ("batch", "resolution", "num_classes", "min_repeats"):
            at_least(k, getattr(self, k), 1)
        at_least("threads", self.threads, 0)
        at_least("warmup", self.warmup, 0)
        if self.max_repeats < self.min_repeats:
            raise UserError(f"max_repeats ({self.max_repeats}) must be >= min_repeats ({self.min_repeats})")
        if not 0 < self.rel_ci < 1:
            raise UserError(f"rel_ci must be in (0, 1), got {self.rel_ci}")


# ---- the one timing rule ----------------------------------------------------------------------------


def median_ci(times: list[float]) -> float:
    """Half-width of the 95% distribution-free confidence interval of the median, relative to it."""
    x = sorted(times)
    n = len(x)
    half = 1.96 * math.sqrt(n) / 2
    lo, hi = max(0, math.floor(n / 2 - half) - 1), min(n - 1, math.ceil(n / 2 + half) - 1)
    med = float(np.median(x))
    return (x[hi] - x[lo]) / 2 / med if med > 0 else math.inf


def repeat(run: Callable[[], float], cfg: TableConfig) -> list[float]:
    """`warmup` calls of `run` (one timed call, returning its ms), then calls until the median's 95% interval
    is within `rel_ci` of it (between `min_repeats` and `max_repeats`); returns the timed calls' ms."""
    for _ in range(cfg.warmup):
        run()
    times: list[float] = []
    while True:
        times.append(run())
        n = len(times)
        if n >= cfg.max_repeats or (n >= cfg.min_repeats and median_ci(times) <= cfg.rel_ci):
            return times


def summarise(times: list[float]) -> dict[str, float]:
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return {"ms": round(float(med), 6), "iqr": round(float(q3 - q1), 6), "n": len(times),
            "ci": round(median_ci(times), 4)}  # fmt: skip


def measure(call: Callable[[], Any], sync: Callable[[], None], cfg: TableConfig) -> dict[str, float]:
    """Median ms of `call()` with its spread (see the module's docstring)."""

    def run() -> float:
        t0 = time.perf_counter()
        call()
        sync()
        return (time.perf_counter() - t0) * 1e3

    return summarise(repeat(run, cfg))


class Timer:
    """Builds a part's module with the one builder, compiles it for the backend, and times it."""

    def __init__(self, cfg: TableConfig) -> None:
        import torch

        self.cfg, self.torch = cfg, torch
        self.malloc = pin_malloc()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.threads = torch.get_num_threads()
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"device={cfg.device} but no CUDA device is available")
        if cfg.backend == "onnxruntime":
            try:
                import onnxruntime  # noqa: F401
            except ImportError:
                raise UserError("backend=onnxruntime needs the onnx extra: pip install 'effnas[onnx]'") from None
            if self.device.type != "cpu":
                raise UserError("backend=onnxruntime times on the CPU here (device=cpu)")

    def description(self) -> str:
        if self.device.type == "cuda":
            return f"cuda: {self.torch.cuda.get_device_name(self.device)}"
        return f"cpu: {cpu_name()}"

    def header(self, space: str) -> dict[str, Any]:
        """The table's header; `space_source` is how `validate` reloads the space (a name, or a file's path)."""
        c = self.cfg
        source = c.space if not Path(c.space).is_file() else str(Path(c.space).resolve())
        versions = {"python": platform.python_version(), "torch": self.torch.__version__}
        if c.backend == "onnxruntime":
            import onnxruntime

            versions["onnxruntime"] = onnxruntime.__version__
        return {"space": space, "space_source": source, "device": self.description(), "backend": c.backend,
                "batch": c.batch, "threads": self.threads, "malloc": self.malloc, "resolution": c.resolution,
                "num_classes": c.num_classes, "versions": versions,
                "settings": {k: getattr(c, k) if k != "method" else c.how for k in SETTINGS},
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "complete": False}  # fmt: skip

    def part_module(self, part: Part) -> tuple[Any, tuple[int, ...]]:
        """(module, input shape) of a part, from `build` or its `Block`."""
        from torch import nn

        from search_spaces import Arch, Stage, build
        from search_spaces.builder import Block

        b, hw = self.cfg.batch, part.input_hw
        if part.kind == "block":
            assert part.spec is not None
            return Block(part.spec, part.activation, 1e-3, 0.01), (b, part.channels, hw, hw)
        one = (Stage("ds", 1, 3, 1, 1.0, part.channels),)
        if part.kind == "stem":
            net = build(Arch(one, stem=part.width, head=0, activation=part.activation))
            method = "forward_stem"
        else:
            net = build(Arch(one, stem=part.channels, head=part.width, activation=part.activation), part.num_classes)
            method = "forward_head"

        class Call(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: Any) -> Any:
                return getattr(self.net, method)(x)

        return Call(), (b, part.channels, hw, hw)

    def time(self, module: Any, shape: tuple[int, ...]) -> dict[str, float]:
        torch = self.torch
        module = module.eval().to(self.device)
        x = torch.randn(*shape, device=self.device, generator=None)
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        with torch.inference_mode():
            if self.cfg.backend == "torch":
                return measure(lambda: module(x), sync, self.cfg)
            if self.cfg.backend == "torchscript":
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    traced = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(module, x)))
                return measure(lambda: traced(x), sync, self.cfg)
        return self._time_onnx(module, x)

    def _time_onnx(self, module: Any, x: Any) -> dict[str, float]:
        import io
        import warnings

        import onnxruntime

        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.torch.onnx.export(module, (x,), buf, input_names=["x"], dynamo=False)  # type: ignore[arg-type]
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = self.threads, 1
        session = onnxruntime.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        return measure(lambda: session.run(None, feed), lambda: None, self.cfg)

    def time_in_network(self, arch: Any) -> tuple[dict[str, float], np.ndarray]:
        """The whole network timed with a timestamp after each of its parts (`arch_parts`' order): the
        totals' statistics, and each part's median ms over the same calls."""
        from search_spaces import build

        torch, c = self.torch, self.cfg
        net = build(arch, c.num_classes).eval().to(self.device)
        x = torch.randn(c.batch, 3, c.resolution, c.resolution, device=self.device)
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        blocks = [b for stage in net.blocks for b in stage]  # type: ignore[attr-defined]
        calls: list[np.ndarray] = []
        clock = time.perf_counter

        def run() -> float:
            ts = [clock()]
            y = net.forward_stem(x)
            sync()
            ts.append(clock())
            for b in blocks:
                y = b(y)
                sync()
                ts.append(clock())
            net.forward_head(y)
            sync()
            ts.append(clock())
            calls.append(np.diff(ts) * 1e3)
            return float(calls[-1].sum())

        with torch.inference_mode():
            totals = repeat(run, c)
        return summarise(totals), np.median(np.stack(calls[-len(totals) :]), axis=0)

    def time_part(self, part: Part) -> dict[str, float]:
        module, shape = self.part_module(part)
        return self.time(module, shape)

    def time_arch(self, arch: Any) -> dict[str, float]:
        from search_spaces import build

        c = self.cfg
        return self.time(build(arch, c.num_classes), (c.batch, 3, c.resolution, c.resolution))


def pin_malloc() -> str:
    """Fix glibc's mmap and trim thresholds (1 GiB): by default they move with the process's history (a freed
    mmapped block raises them), so a block's large activations are fresh mmapped pages, faulted in on every
    call (3-4x slower for 112x112x192 activations on this project's CPU), or reused heap memory, depending on
    what the process did before. Pinned, every timing sees the steady state of a long-running process."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-3, 1 << 30) == 1 and libc.mallopt(-1, 1 << 30) == 1  # M_MMAP_THRESHOLD, M_TRIM_...
    except (OSError, AttributeError):
        ok = False
    return "glibc mmap and trim thresholds pinned at 1 GiB" if ok else "the C library's defaults"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
