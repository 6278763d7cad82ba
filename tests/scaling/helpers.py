"""Shared by the scaling tests: B0, the paper's coefficients, the reference table, fvcore per module, the
brute-force grid, the `scale` CLI runner.

Reference numbers come from /work/shared/REFERENCE.md (torchvision/timm
params, fvcore MACs, the paper's FLOPs row) or from torchvision and fvcore
computed live, never from what this code printed.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from fractions import Fraction

import torch

from search_spaces import preset
from tests.conftest import ROOT

B0 = preset("efficientnet-b0")
PAPER = (1.2, 1.1, 1.15)
B0_MACS = 384_534_752 + 1280 * 1000  # REFERENCE.md: fvcore conv + linear of torchvision B0
# REFERENCE.md table, B1..B7: (width, depth, resolution, torchvision params, fvcore MACs G, paper FLOPs B)
OFFICIAL = {
    1: (1.0, 1.1, 240, 7_794_184, 0.6868, 0.70),
    2: (1.1, 1.2, 260, 9_109_994, 0.9936, 1.0),
    3: (1.2, 1.4, 300, 12_233_232, 1.8271, 1.8),
    4: (1.4, 1.8, 380, 19_341_616, 4.3938, 4.2),
    5: (1.6, 2.2, 456, 30_389_784, 10.2664, 9.9),
    6: (1.8, 2.6, 528, 43_040_704, 19.0676, 19),
    7: (2.0, 3.1, 600, 66_347_960, 37.7459, 37),
}


def fvcore_by_module(net: torch.nn.Module, res: int) -> dict[str, int]:
    from fvcore.nn import FlopCountAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fca = FlopCountAnalysis(net.eval(), torch.randn(1, 3, res, res))
        fca.unsupported_ops_warnings(False)
        fca.uncalled_modules_warnings(False)
        flops = fca.by_module()
    return {n: flops[n] for n, m in net.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}


def brute_force_grid() -> set[tuple[Fraction, Fraction, Fraction]]:
    """Exact rationals: alpha in 1..2, beta, gamma in 1..1.5 step 1/20, |a b^2 g^2 - 2| <= 1/10."""
    return {
        (a, b, g)
        for a in (1 + Fraction(i, 20) for i in range(21))
        for b in (1 + Fraction(j, 20) for j in range(11))
        for g in (1 + Fraction(k, 20) for k in range(11))
        if abs(a * b * b * g * g - 2) <= Fraction(1, 10)
    }


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaling.cli", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300
    )
