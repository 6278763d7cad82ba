"""Trained weights of a search's trials: RUN/weights/trial-NNNNN.pt, the best `keep_weights` by reward.

A trial that finishes training writes its inference weights (the EMA when the recipe keeps one) before it
reports its score, in the format of `nas train`'s model.pt: {"arch": Arch as a dict, "state_dict": ...},
with the data's number of classes in the classifier. After each finished trial, the files of finished
trials ranked outside the best `keep_weights` by reward (COMPLETE trials only; pruned, failed and
interrupted trials keep none) are deleted; a running trial's file is never touched, so k worker
processes or Ray trials can finish at once. `keep_weights=-1` keeps every trial's, 0 none.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import torch
from optuna.trial import FrozenTrial, TrialState
from torch import nn

from effnas import rundir
from effnas.errors import UserError
from search_spaces import Arch, build

DIR = "weights"
_NAME = re.compile(r"trial-(\d+)\.pt")


def path(folder: Path, number: int) -> Path:
    return folder / f"trial-{number:05d}.pt"


def save(file: Path, arch: Arch, model: nn.Module) -> None:
    """The weights (on the CPU) and the Arch that builds them, written atomically."""
    state = {"arch": arch.to_dict(), "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    file.parent.mkdir(parents=True, exist_ok=True)
    rundir.atomic_write(file, lambda tmp: torch.save(state, tmp))


def load(file: Path) -> tuple[Arch, nn.Module]:
    """The network of a weights file (a trial's or `nas train`'s model.pt), built and loaded, in eval mode."""
    try:
        state: dict[str, Any] = torch.load(file, map_location="cpu", weights_only=True)
        arch = Arch.from_dict(state["arch"])
        weights = state["state_dict"]
    except (OSError, RuntimeError, KeyError, TypeError) as e:
        raise UserError(f"{file}: not a weights file of this toolkit ({type(e).__name__}: {e})") from None
    net = build(arch, int(weights["classifier.weight"].shape[0]))
    net.load_state_dict(weights)
    return arch, net.eval()


def num_classes(net: nn.Module) -> int:
    """The classifier width of a network of `search_spaces.build`."""
    return int(cast(nn.Linear, net.classifier).out_features)


def prune(folder: Path, trials: list[FrozenTrial], keep: int) -> None:
    """Delete the files of finished trials outside the best `keep` COMPLETE trials by reward (-1: keep all)."""
    if keep < 0 or not folder.is_dir():
        return
    finished = {t.number: t for t in trials if t.state.is_finished()}
    ranked = sorted((t for t in finished.values() if t.state == TrialState.COMPLETE and "reward" in t.user_attrs),
                    key=lambda t: (-float(t.user_attrs["reward"]), t.number))  # fmt: skip
    best = {t.number for t in ranked[:keep]}
    for f in folder.iterdir():
        m = _NAME.fullmatch(f.name)
        if m and int(m.group(1)) in finished and int(m.group(1)) not in best:
            f.unlink(missing_ok=True)


def kept(folder: Path) -> list[int]:
    """The trial numbers whose weights are in `folder`."""
    if not folder.is_dir():
        return []
    return sorted(int(m.group(1)) for f in folder.iterdir() if (m := _NAME.fullmatch(f.name)))
