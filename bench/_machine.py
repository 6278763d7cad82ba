"""The machine line every benchmark prints with its table (CPU model, cores, versions, device, load)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def machine_line(device: str = "cpu", **versions: str) -> str:
    """One line naming the CPU, torch threads, torch (+ `versions`, e.g. torchvision=...), Python,
    the device and the 1-minute load average now (a contended run is recognisable by it)."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    load = f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else "?"
    libs = "".join(f"{name} {v}; " for name, v in versions.items())
    return (
        f"CPU: {cpu}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads); "
        f"torch {torch.__version__}; {libs}python {platform.python_version()}; device: {dev}; "
        f"1-min load average at start {load}"
    )
