"""`nas export`'s writers for the formats other libraries load (timm, torch.export, ONNX), each checked by
the other side before the command ends, and the run's number of classes for an untrained export."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from effnas.errors import UserError
from nas import weights
from search_spaces import Arch


def run_classes(folder: Path) -> int:
    """The classifier width of a run's trained networks, from any of its kept weights."""
    kept = weights.kept(folder)
    if not kept:
        raise UserError("--untrained needs --num-classes: the run keeps no weights to read its classes from")
    return weights.num_classes(weights.load(weights.path(folder, kept[0]))[1])


def export_timm(arch: Arch, net: Any, out: str) -> None:
    """{"timm": to_timm_spec, "state_dict": the weights in timm's names} for timm's EfficientNet, checked by
    building that model, loading the weights and comparing its logits with ours on one batch."""
    try:
        import timm  # noqa: F401
    except ImportError:
        raise UserError("--format timm-pt needs timm (pip install timm)") from None
    import torch

    from search_spaces.codecs import timm_model, to_timm_spec

    spec = to_timm_spec(arch)
    peer = timm_model(spec, weights.num_classes(net)).eval()
    theirs, ours = peer.state_dict(), net.state_dict()
    if [v.shape for v in theirs.values()] != [v.shape for v in ours.values()]:
        raise RuntimeError(f"timm's EfficientNet of {arch.to_block_strings()} has other parameters than ours")
    state = dict(zip(theirs, ours.values()))
    peer.load_state_dict(state)
    x = torch.randn(2, 3, arch.resolution, arch.resolution, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (peer(x) - net(x)).abs().max().item()
    if diff > 1e-3:
        raise RuntimeError(f"timm's logits differ from ours by {diff:.2e}")
    torch.save({"timm": spec, "state_dict": state}, out)


def export_program(net: Any, resolution: int, out: str) -> None:
    """torch.export's program with a dynamic batch, checked by loading it back and comparing logits."""
    import torch

    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    program = torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
    torch.export.save(program, out)
    with torch.no_grad():
        diff = (torch.export.load(out).module()(x) - net(x)).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"the exported program's logits differ from ours by {diff:.2e}")


def export_onnx(net: Any, resolution: int, out: str) -> None:
    """ONNX through torch's exporter, checked by onnxruntime on one batch (the `onnx` extra)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        raise UserError("--format onnx needs the onnx extra: pip install 'effnas[onnx]' (onnx, onnxruntime)") from None
    import numpy as np
    import torch
    from torch.jit._trace import TracerWarning

    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():  # the pooling skip's channel test is a constant of the Arch, as traced
        warnings.simplefilter("ignore", TracerWarning)
        torch.onnx.export(net, (x,), out, input_names=["image"], output_names=["logits"], dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})  # fmt: skip
    with torch.no_grad():
        ours = net(x).numpy()
    theirs = onnxruntime.InferenceSession(out, providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    if not np.allclose(ours, theirs, rtol=1e-3, atol=1e-4):
        raise RuntimeError(f"onnxruntime's logits differ from torch's by {np.abs(ours - theirs).max():.2e}")
