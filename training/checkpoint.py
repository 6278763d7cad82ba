"""Training checkpoints: everything a killed run needs to continue exactly where it stopped.

One file, written atomically after every epoch: model, optimizer, EMA, the step
counter (the learning rate is a function of it), history, and the RNG states
(torch's global generator, which drives dropout, stochastic depth and the
augmentation policy, CUDA's, and the data loader's generator).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from effnas.errors import UserError
from effnas.rundir import atomic_write
from search_spaces import Arch
from training.recipe import Recipe

VERSION = 1
RECIPE_MAY_CHANGE = ("eval_batch_size",)
"""Recipe keys a resumed run may change."""


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically: a kill leaves the previous checkpoint or the new one, never half of one."""
    atomic_write(path, lambda tmp: torch.save({"version": VERSION, **state}, tmp))


def load(path: Path, device: torch.device) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:
        raise UserError(f"cannot read checkpoint {path} ({type(e).__name__}); remove it to start over") from None
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise UserError(f"{path} is not an effnas training checkpoint (version {VERSION})")
    return state


def check_compatible(state: dict[str, Any], path: Path, arch: Arch, recipe: Recipe, num_classes: int) -> None:
    """ValueError (one line) unless the checkpoint belongs to this architecture, recipe and data."""
    saved = Arch.from_dict(state["arch"])
    if saved.replace(name="") != arch.replace(name=""):
        raise UserError(
            f"{path} holds a checkpoint of another architecture ({saved.name or 'unnamed'}, "
            f"{saved.num_blocks} blocks) than {arch.name or 'this one'} ({arch.num_blocks} blocks); "
            "use another run= directory"
        )
    if int(state["num_classes"]) != num_classes:
        raise UserError(f"{path} was trained for {state['num_classes']} classes, this data has {num_classes}")
    new = recipe.to_dict()
    old = {**Recipe().to_dict(), **state["recipe"]}  # a key added since the checkpoint was written has its default
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in RECIPE_MAY_CHANGE)
    if diff:
        shown = ", ".join(f"train.{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
        raise UserError(f"{path} was trained with another recipe ({shown}); use another run= directory")


def rng_state(loader_generator: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "loader": loader_generator.get_state()}
    state["loader_device"] = loader_generator.device.type
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], loader_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if state.get("loader_device") == loader_generator.device.type:
        loader_generator.set_state(state["loader"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = [s.cpu() for s in state["cuda"]]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
