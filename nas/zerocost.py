"""Zero-cost scores: a guess at how well an architecture will train, from the untrained network and one
mini-batch, in a fraction of a second (Abdelfattah et al., ICLR 2021; Mellor et al., ICML 2021).

- `synflow`: sum over conv/linear weights of |w * dR/dw|, R the sum of the network's output on an
  all-ones input, with every parameter replaced by its absolute value, in float64 and with batch
  norm in eval mode (Tanaka et al. 2020, as Abdelfattah et al. use it to score architectures).
- `naswot`: log |det K| of the batch's activation-pattern kernel, K[i, j] the number of units
  (after every ReLU/SiLU, whose output is positive exactly where its input is) on which images i
  and j agree, active or inactive (Mellor et al. 2021, "NAS without training").
- `grad_norm`: sum over conv/linear weights of the Euclidean norm of the cross-entropy gradient
  on one labelled batch.
- `params`, `macs`: the baselines any score must beat (from `search_spaces.cost`).

Higher is better for every score. The network is built as the search's trials build it (the
TF/timm initialisation, seeded), at the data's resolution, on the first `batch` training images.
`nas fidelity` reports each score's rank correlation with the reference training next to the
proxies', and `nas search warmup.*` enqueues the best-scored of a pool of random architectures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from search_spaces import Arch, build, cost
from training.augment import EvalLoader
from training.data import Data

SCORES = ("params", "macs", "synflow", "naswot", "grad_norm")
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _batch(data: Data, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `batch` training images as evaluation sees them (normalised, unaugmented), on the CPU."""
    x, y = next(iter(EvalLoader(data, data.train, batch, data.resolution, 1.0)))
    return x.cpu(), y.cpu()


def synflow(model: nn.Module, data: Data, batch: int) -> float:
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    r = data.resolution
    model(torch.ones(1, 3, r, r, dtype=torch.float64)).sum().backward()
    return float(sum((w * w.grad).abs().sum().item() for w in _weights(model) if w.grad is not None))


def naswot(model: nn.Module, data: Data, batch: int) -> float:
    codes: list[torch.Tensor] = []

    def keep(_: nn.Module, __: object, out: torch.Tensor) -> None:
        codes.append((out.detach() > 0).flatten(1).double())

    hooks = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, ACTIVATIONS)]
    x, _ = _batch(data, batch)
    with torch.no_grad():
        model.train()(x)
    for h in hooks:
        h.remove()
    c = torch.cat(codes, 1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k)[1])


def grad_norm(model: nn.Module, data: Data, batch: int) -> float:
    x, y = _batch(data, batch)
    F.cross_entropy(model.train()(x), y).backward()  # type: ignore[no-untyped-call]
    return float(sum(w.grad.norm().item() for w in _weights(model) if w.grad is not None))


NETWORK_SCORES: dict[str, Callable[[nn.Module, Data, int], float]] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
}


def score(name: str, arch: Arch, data: Data, seed: int = 0, batch: int = 64, resolution: int = 224,
          num_classes: int = 1000) -> tuple[float, float]:  # fmt: skip
    """(score, seconds) of `arch` under score `name`; `params` and `macs` at the reward's resolution and
    classes (`resolution`, `num_classes`), as the search costs a trial."""
    t = time.perf_counter()
    if name in ("params", "macs"):
        c = cost(arch, resolution, num_classes)
        return float(c.params if name == "params" else c.macs), time.perf_counter() - t
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        value = NETWORK_SCORES[name](build(arch, data.num_classes), data, batch)
    return value, time.perf_counter() - t
