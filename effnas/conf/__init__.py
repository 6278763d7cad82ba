"""The packaged Hydra configs (read with importlib.resources; shipped in the wheel)."""
