"""`python -m search_spaces NAME_OR_FILE [--resolution R]`: describe an architecture."""

from __future__ import annotations

import argparse
import sys

from search_spaces import cost, load_arch, preset, preset_names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m search_spaces", description="Describe an architecture.")
    p.add_argument("arch", help=f"a preset ({', '.join(preset_names())}) or an Arch YAML/JSON file")
    p.add_argument("--resolution", type=int, default=None, help="count MACs at this resolution")
    args = p.parse_args(argv)
    try:
        arch = load_arch(args.arch) if args.arch.endswith((".yaml", ".yml", ".json")) else preset(args.arch)
        c = cost(arch, args.resolution)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{arch.name or args.arch}: {c.params:,} params, {c.macs / 1e6:,.1f}M MACs at {c.resolution}px")
    print("TF block strings:  " + " ".join(arch.to_block_strings()))
    try:
        print("timm arch_def:     " + " ".join(s[0] for s in arch.to_timm_arch_def()))
    except ValueError as e:
        print(f"timm arch_def:     ({e})")
    print(c.table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
