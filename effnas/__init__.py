"""effnas: what every room of the toolkit shares, below all of them.

- `effnas.errors`: `UserError`, the one exception family for bad input (one `error:` line, exit 2);
- `effnas.config`: Hydra composition of the packaged configs (`effnas/conf`) and typed sections;
- `effnas.rundir`: the run-directory contract of every command that writes;
- `effnas.raycluster`: joining or starting a Ray cluster, worker devices;
- `effnas.log`: one way to print (logging through a tqdm-aware handler).

Importing this package imports nothing heavy (no torch, optuna or pandas).
"""

__version__ = "0.1.0"
