"""Search: the MnasNet reward, the one trial function, Optuna studies on every executor, the `nas` CLI.

The public names below are imported on first use, so `import nas` (and `nas --help`)
stays free of torch, optuna and pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HARD": "nas.reward",
    "SOFT": "nas.reward",
    "RewardConfig": "nas.reward",
    "reward": "nas.reward",
    "SearchConfig": "nas.config",
    "compose_search": "nas.config",
    "Objective": "nas.objective",
    "run_trial": "nas.objective",
    "run_search": "nas.search",
    "read_search": "nas.results",
    "arch_of_trial": "nas.results",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
