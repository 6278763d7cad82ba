"""training/guard.py: the memory estimate against what autograd really keeps, and the refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from search_spaces import build, preset
from tests.conftest import PYTHON
from training.guard import PARAM_COPIES, check_fits, footprint


def saved_activation_bytes(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for the backward pass, parameters excluded (torch's own count)."""
    params = {p.data_ptr() for p in net.parameters()}
    seen: set[tuple[int, int]] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        key = (t.data_ptr(), t.numel())
        if t.data_ptr() not in params and key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    return total


@pytest.mark.parametrize("name, res, reduction", [("efficientnet-b0", 64, 0), ("mnasnet-a1", 64, 0),
                                                  ("efficientnet-b2", 48, 0), ("efficientnet-b0", 32, 2)])  # fmt: skip
def test_estimate_is_within_2x_of_what_autograd_keeps(name: str, res: int, reduction: int):
    arch = preset(name)
    real = saved_activation_bytes(build(arch, 10, reduction).train(), torch.randn(4, 3, res, res))
    est = footprint(arch, 4, res, 10, reduction)
    assert 0.5 <= est.activation_bytes / real <= 2.0, (est.activation_bytes, real)
    assert est.params == sum(p.numel() for p in build(arch, 10).parameters())
    assert footprint(arch, 8, res, 10, reduction).activation_bytes == 2 * est.activation_bytes  # linear in batch
    assert est.total_bytes == est.activation_bytes + PARAM_COPIES * 4 * est.params


def test_check_fits_refuses_with_the_estimate():
    b0 = preset("efficientnet-b0")
    assert check_fits(b0, 32, 32, 10, "cpu", limit_gb=1.0).params > 0
    with pytest.raises(ValueError, match=r"needs about [0-9.]+ GB to train at batch 256 and 224 px .* 1\.0 GB limit"):
        check_fits(b0, 256, 224, 10, "cpu", limit_gb=1.0)


def test_huge_architectures_are_refused_before_anything_is_written(tmp_path: Path):
    b0 = preset("efficientnet-b0")
    stages = list(b0.stages)
    stages[3] = type(stages[3])(**{**stages[3].__dict__, "repeats": 10_000})
    (tmp_path / "deep.yaml").write_text(b0.replace(stages=tuple(stages), name="deep").to_yaml())
    cmd = [
        PYTHON,
        "-m",
        "nas.cli",
        "train",
        str(tmp_path / "deep.yaml"),
        "train.max_memory_gb=8",
        f"run={tmp_path / 'r'}",
    ]
    p = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "10013 blocks" in errors[0] and "8.0 GB limit" in errors[0]
    assert "Traceback" not in p.stderr and not (tmp_path / "r").exists()
