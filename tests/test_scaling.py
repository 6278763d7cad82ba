"""scaling/: the compound rule, the rounding bound, the grid, families, the `scale` CLI.

Reference numbers come from /work/shared/REFERENCE.md (torchvision/timm
params, fvcore MACs, the paper's FLOPs row) or from torchvision and fvcore
computed live, never from what this code printed.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import sys
import warnings
from dataclasses import replace
from fractions import Fraction

import pandas as pd
import pytest
import torch

import scaling
from scaling import (
    axis,
    check_compound,
    compound,
    family,
    family_table,
    flops_factor,
    grid,
    grid_points,
    load_coefficients,
    official_family,
    official_multipliers,
    pure_multipliers,
    rank,
    repeat_block_macs,
    rounding_bound,
    scale_compound,
    scaling_shares,
)
from search_spaces import SKIP_TYPES, Arch, Stage, build, cost, load_arch, preset, round_filters, round_repeats, scale
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


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


# ---- the official family (hand-set coefficients) -----------------------------


def test_official_family_matches_reference_table():
    members = official_family(range(1, 8))
    table = family_table(members, B0, official_multipliers(range(1, 8)))
    for (phi, arch), row in zip(members, table.itertuples()):
        width, depth, res, params, gmacs, paper_flops = OFFICIAL[phi]
        c = cost(arch)
        assert (arch.name, arch.resolution, c.params) == (f"efficientnet-b{phi}", res, params)
        assert round(c.macs / 1e9, 4) == gmacs  # fvcore conv+linear on torchvision's model
        assert abs(c.macs / 1e9 / paper_flops - 1) < 0.05  # the paper's FLOPs row
        assert (row.width, row.depth, row.resolution, row.params, row.macs) == (width, depth, res, params, c.macs)
        assert row.macs_ratio == pytest.approx(gmacs / 0.3858, rel=2e-4)


@pytest.mark.parametrize("phi", [1, 2])
def test_official_b1_b2_equal_torchvision_and_fvcore(phi):
    pytest.importorskip("fvcore.nn")
    import torchvision

    ((_, arch),) = official_family([phi])
    tv = getattr(torchvision.models, f"efficientnet_b{phi}")()
    assert cost(arch).params == n_params(tv) == OFFICIAL[phi][3]
    assert cost(arch).macs == sum(fvcore_by_module(build(arch), arch.resolution).values())


# ---- the compound rule ---------------------------------------------------------


def test_compound_numbers():
    assert compound(*PAPER, 0) == (1.0, 1.0, 1.0)
    assert compound(*PAPER, 1) == PAPER
    assert compound(*PAPER, 2) == pytest.approx((1.44, 1.21, 1.3225))
    assert compound(*PAPER, 7) == pytest.approx((3.5831808, 1.9487171, 2.6600198), rel=1e-7)
    assert flops_factor(*PAPER) == pytest.approx(1.2 * 1.21 * 1.3225) == pytest.approx(1.92027)
    assert all(isinstance(x, float) for x in compound(1, 1, 1, 1))
    assert scale_compound(B0, 1, 1, 1, 1).resolution == 224  # an int factor is not an exact size


def test_pure_phi1_is_b2_at_256():
    # REFERENCE rule by hand: ceil(1.2 n) blocks; 16*1.1=17.6 -> 16, 40*1.1=44 -> 48, 112*1.1 -> 120,
    # 192*1.1 -> 208, stem 35.2 -> 32, head 1408; 224*1.15 = 257.6 -> 256. That is torchvision's B2
    # (width 1.1, depth 1.2) at 256 px.
    a = scale_compound(B0, *PAPER, 1)
    assert [s.repeats for s in a.stages] == [2, 3, 3, 4, 4, 5, 2]
    assert [s.out_channels for s in a.stages] == [16, 24, 48, 88, 120, 208, 352]
    assert (a.stem, a.head, a.resolution, a.name) == (32, 1408, 256, "efficientnet-b0-phi1")
    assert a == preset("efficientnet-b2").replace(resolution=256, dropout=0.2)
    assert cost(a).params == OFFICIAL[2][3]


def test_check_compound_against_torchvision_b2_at_256():
    pytest.importorskip("fvcore.nn")
    import torchvision

    tv_macs = sum(fvcore_by_module(torchvision.models.efficientnet_b2(), 256).values())
    chk = check_compound(B0, *PAPER, 1)
    assert chk.product == pytest.approx(1.92027)
    assert chk.ideal_ratio == pytest.approx(1.92027)
    assert chk.macs_ratio == pytest.approx(tv_macs / B0_MACS, rel=1e-12)
    assert chk.rounding_factor == pytest.approx(tv_macs / B0_MACS / 1.92027)
    assert "alpha*beta^2*gamma^2 = 1.92027" in chk.summary()


@pytest.mark.parametrize(
    "args, match",
    [
        ((1.2, 1.1, 1.15, -1), "phi must be"),
        ((0, 1.1, 1.15, 1), "alpha=0"),
        ((1.2, -1.1, 1.15, 1), "beta=-1.1"),
        ((1.2, 1.1, float("nan"), 1), "gamma=nan"),
        ((1.2, 1.1, 1.15, float("inf")), "phi must be"),
    ],
)
def test_compound_rejects(args, match):
    with pytest.raises(ValueError, match=match):
        compound(*args)
    with pytest.raises(ValueError, match=match):
        scale_compound(B0, *args)


def test_validation_names_every_bad_coefficient():
    with pytest.raises(ValueError, match=r"^compound coefficients must be finite and > 0, got alpha=0, gamma=-2$"):
        compound(0, 1.1, -2, 1)


# ---- the rounding bound ------------------------------------------------------------


def test_width_rounding_envelope():
    """max(0.9, 1 - 4/x) <= round_filters(c, w) / x <= max(1 + 4/x, 0.9 + 8/x), x = c w, on a dense sweep."""
    worst = 0.0
    for c in range(8, 1288, 8):
        for i in range(0, 3301):
            w = 1 + i / 1000
            x = c * w
            rho = round_filters(c, w) / x
            assert max(0.9, 1 - 4 / x) - 1e-12 <= rho <= max(1 + 4 / x, 0.9 + 8 / x) + 1e-12, (c, w)
            if c >= 16:  # B0's narrowest layer
                worst = max(worst, rho)
    assert 1.33 < worst < 1.35  # c=16, x just above 17.78: 16 < 0.9 x bumps to 24; 1 + 4/x alone would miss it


def test_resolution_rounding_envelope():
    for i in range(0, 2000):
        r = 1 + i / 1000
        res = scale(B0, resolution=r).resolution
        assert abs(res - 224 * r) <= 4 and res % 8 == 0
        for s in (2, 4, 8, 16, 32):
            assert 0 <= s * -(-res // s) - res <= s - math.gcd(s, 8)


def test_depth_identity_extra_blocks_are_repeats():
    rs, m0 = repeat_block_macs(B0), cost(B0).macs
    for d in (1.0, 1.1, 1.2, 1.44, 2.0736, 3.1, 3.5831808):
        added = sum((round_repeats(s.repeats, d) - s.repeats) * r for s, r in zip(B0.stages, rs))
        assert cost(scale(B0, depth=d)).macs == m0 + added


def test_scaling_shares_equal_fvcore_on_torchvision_b0():
    pytest.importorskip("fvcore.nn")
    import torchvision

    net = torchvision.models.efficientnet_b0()
    flops = fvcore_by_module(net, 224)
    mods = dict(net.named_modules())
    total = sum(flops.values())
    assert total == B0_MACS
    w_r2 = sum(
        f for n, f in flops.items() if getattr(mods[n], "groups", 1) > 1 or getattr(mods[n], "in_channels", 0) == 3
    )
    se = sum(f for n, f in flops.items() if n.endswith((".fc1", ".fc2")))
    fc = sum(f for n, f in flops.items() if isinstance(mods[n], torch.nn.Linear))
    sq, sl, s0q, s0l = scaling_shares(B0)
    assert (sl, s0q, s0l) == pytest.approx((w_r2 / total, se / total, fc / total), rel=1e-12)
    assert sq == pytest.approx(1 - (w_r2 + se + fc) / total, rel=1e-12)


@pytest.mark.parametrize("phi", range(1, 8))
def test_rounding_bound_brackets_the_pure_family(phi):
    b = rounding_bound(B0, *PAPER, phi)
    assert b.ideal == pytest.approx(1.92027**phi)
    assert b.macs_ratio == cost(scale_compound(B0, *PAPER, phi)).macs / B0_MACS
    assert b.lower <= b.tight_lower <= b.quotient <= b.tight_upper <= b.upper
    if phi >= 3:  # forgetting to scale the resolution would fall outside the bound
        assert cost(scale_compound(B0, *PAPER, phi), 224).macs / B0_MACS / b.ideal < b.lower


def random_base(rng: random.Random) -> Arch:
    """A random base meeting the bound's assumptions (any block type, skip, kernel, stride)."""
    stages = []
    for _ in range(rng.randint(1, 6)):
        block = rng.choice(["mbconv", "ds", "conv"])
        expand = float(rng.choice([1, 2, 3, 4, 6])) if block == "mbconv" else 1.0
        stages.append(
            Stage(
                block=block,
                repeats=rng.randint(1, 4),
                kernel=rng.choice([1, 3, 5, 7]),
                stride=rng.choice([1, 2]),
                expand=expand,
                out_channels=8 * rng.randint(1, 40),
                se_ratio=rng.choice([0.0, 0.125, 0.25, 0.5]),
                skip=rng.choice(SKIP_TYPES),
            )
        )
    top = 2 * math.prod(s.stride for s in stages)
    k = -(-8 // top)
    return Arch(
        stages=tuple(stages),
        stem=8 * rng.randint(1, 6),
        head=rng.choice([0, 8 * rng.randint(1, 200)]),
        resolution=top * rng.randint(k, k + 10),  # any multiple of the total stride, not only of 8
    )


def test_rounding_bound_holds_on_random_bases():
    rng = random.Random(7)
    for _ in range(300):
        base = random_base(rng)
        alpha, beta, gamma = (round(rng.uniform(1.0, 1.6), 2) for _ in range(3))
        b = rounding_bound(base, alpha, beta, gamma, rng.randint(0, 6))
        eps = 1e-12
        assert b.lower - eps <= b.tight_lower <= b.quotient + eps <= b.tight_upper + 2 * eps <= b.upper + 3 * eps, base


def test_rounding_bound_refuses_bases_outside_its_assumptions():
    with pytest.raises(ValueError, match="8 \\* SE ratio"):
        rounding_bound(B0.replace(stages=(replace(B0.stages[0], se_ratio=0.1), *B0.stages[1:])), *PAPER, 1)
    with pytest.raises(ValueError, match="divisible by the total stride 32"):
        rounding_bound(B0.replace(resolution=240), *PAPER, 1)


def test_a_priori_bound_narrows_as_phi_grows():
    # every rounding term is relative (4/x, 4/(R r), one block in n d), so the envelope shrinks with phi
    bounds = [rounding_bound(B0, *PAPER, phi) for phi in range(0, 8)]
    assert all(a.upper > b.upper for a, b in zip(bounds, bounds[1:]))
    assert all(a.upper - a.lower > b.upper - b.lower for a, b in zip(bounds, bounds[1:]))
    assert bounds[0].tight_lower == bounds[0].quotient == bounds[0].tight_upper == 1.0


def test_bound_docstring_table_is_true():
    rows = re.findall(
        r"^\s+(\d)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)\s+\[([\d.]+), ([\d.]+)\]\s+\[([\d.]+), ([\d.]+)\]$",
        scaling.bound.__doc__ or "",
        re.M,
    )
    assert [int(r[0]) for r in rows] == list(range(1, 8))
    for r in rows:
        b = rounding_bound(B0, *PAPER, int(r[0]))
        got = (b.macs_ratio, b.ideal, 2 ** int(r[0]), b.quotient, b.tight_lower, b.tight_upper, b.lower, b.upper)
        assert [round(float(x), 3) for x in r[1:]] == [round(x, 3) for x in got]


# ---- the grid ------------------------------------------------------------------------


def brute_force_grid() -> set[tuple[Fraction, Fraction, Fraction]]:
    """Exact rationals: alpha in 1..2, beta, gamma in 1..1.5 step 1/20, |a b^2 g^2 - 2| <= 1/10."""
    return {
        (a, b, g)
        for a in (1 + Fraction(i, 20) for i in range(21))
        for b in (1 + Fraction(j, 20) for j in range(11))
        for g in (1 + Fraction(k, 20) for k in range(11))
        if abs(a * b * b * g * g - 2) <= Fraction(1, 10)
    }


def test_grid_enumeration():
    table = grid(B0)
    expected = brute_force_grid()
    assert len(table) == len(expected) == 109
    got = {tuple(Fraction(str(v)) for v in row) for row in table[["alpha", "beta", "gamma"]].itertuples(index=False)}
    assert got == expected
    assert ((table["product"] - 2).abs() <= 0.1 + 1e-12).all()
    steps = {round(1 + i * 0.05, 2) for i in range(21)}  # float literals 1.0, 1.05, ..., 2.0
    assert set(table["alpha"]) <= steps and set(table["beta"]) | set(table["gamma"]) <= steps
    assert 1.15 in set(table["gamma"]) and (1.9, 1.0, 1.0) in set(zip(table.alpha, table.beta, table.gamma))
    paper = table[(table.alpha == 1.2) & (table.beta == 1.1) & (table.gamma == 1.15)].iloc[0]
    assert paper["params"] == OFFICIAL[2][3] and paper["resolution"] == 256
    assert paper["product"] == pytest.approx(1.92027)
    row = table.iloc[17]
    c = cost(scale_compound(B0, row.alpha, row.beta, row.gamma, 1))
    assert (row.params, row.macs, row.macs_ratio) == (c.params, c.macs, c.macs / B0_MACS)


def test_axis_is_exact_decimal():
    a = axis(1, 2, 0.05)
    assert len(a) == 21 and a[3] == 1.15 and a[-1] == 2.0
    assert axis(0.1, 0.3, 0.1) == [0.1, 0.2, 0.3]
    assert axis(1, 1.5, 0.2) == [1.0, 1.2, 1.4]


def test_grid_budget_is_seeded_subset():
    full = grid_points()
    sub = grid_points(budget=10, seed=3)
    assert len(sub) == 10 and set(sub) <= set(full)
    assert sub == grid_points(budget=10, seed=3) != grid_points(budget=10, seed=4)
    assert [full.index(p) for p in sub] == sorted(full.index(p) for p in sub)
    assert grid_points(budget=10_000) == full


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(alpha_range=(1, 1.1), beta_range=(1, 1.1), gamma_range=(1, 1.1)), "keeps no point"),
        (dict(step=0), "step must be > 0"),
        (dict(alpha_range=(2, 1)), "alpha range is empty"),
        (dict(beta_range=(0, 1.5)), "positive"),
        (dict(tol=-0.1), "tol"),
        (dict(budget=0), "budget"),
        (dict(phi=2), "phi = 1 only"),
        (dict(phi=-1), "phi must be"),
    ],
)
def test_grid_rejects(kwargs, match):
    with pytest.raises(ValueError, match=match):
        grid(B0, **kwargs)


def test_grid_evaluate_hook_and_rank():
    table = grid(B0, budget=12, evaluate=lambda a: {"accuracy": a.resolution / 1000, "res_seen": a.resolution})
    assert (table["accuracy"] * 1000 == table["resolution"]).all() and (table["res_seen"] == table["resolution"]).all()
    assert rank(table)["accuracy"].is_monotonic_decreasing
    assert rank(table.drop(columns="accuracy"))["distance"].is_monotonic_increasing


# ---- families --------------------------------------------------------------------------


def test_pure_family_and_table():
    members = family(B0, *PAPER)
    assert [p for p, _ in members] == list(range(8))
    assert members[0][1] == B0 and members[1][1] == scale_compound(B0, *PAPER, 1)
    table = family_table(members, B0, pure_multipliers(*PAPER))
    assert list(table.columns[:6]) == ["phi", "name", "width", "depth", "resolution", "blocks"]
    assert {"params", "macs", "macs_ratio", "two_pow_phi"} <= set(table.columns)
    assert list(table.two_pow_phi) == [2**p for p in range(8)]
    assert list(table.ideal_ratio) == pytest.approx([1.92027**p for p in range(8)])
    assert list(table.width) == pytest.approx([1.1**p for p in range(8)])
    assert table.macs_ratio[0] == 1.0 and table.params[1] == OFFICIAL[2][3]
    # by hand: 224 * 1.15^phi = 257.6, 296.2, 340.7, 391.8, 450.5, 518.1, 595.8, to the nearest multiple of 8
    assert list(table.resolution) == [224, 256, 296, 344, 392, 448, 520, 592]
    assert table.macs_ratio.is_monotonic_increasing
    assert math.isnan(family_table(members[:1], B0).width[0])
    with pytest.raises(ValueError, match="phi 0..8"):
        official_family([9])


# ---- the CLI ---------------------------------------------------------------------------------


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaling.cli", *args], capture_output=True, text=True, cwd=cwd or ROOT, timeout=300
    )


def test_cli_family_pure(tmp_path):
    out = tmp_path / "fam"
    p = run_cli("family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phis", "0-7", "--out", str(out))
    assert p.returncode == 0, p.stderr
    table = pd.read_parquet(out / "family.parquet")
    assert list(table.phi) == list(range(8)) and table.params[1] == OFFICIAL[2][3]
    assert pd.read_csv(out / "family.csv").macs.tolist() == table.macs.tolist()
    for phi, arch in family(B0, *PAPER):
        assert load_arch(str(out / f"efficientnet-b0-phi{phi}.yaml")) == arch
    assert "efficientnet-b0-phi7" in p.stdout and "9,109,994" in p.stdout


def test_cli_family_preset_and_coeffs(tmp_path):
    p = run_cli("family", "--preset", "efficientnet", "--out", str(tmp_path / "eff"))
    assert p.returncode == 0, p.stderr
    table = pd.read_parquet(tmp_path / "eff" / "family.parquet")
    assert table.params.tolist()[1:] == [OFFICIAL[i][3] for i in range(1, 8)]
    assert sorted(f.name for f in (tmp_path / "eff").glob("*.yaml"))[:2] == ["config.yaml", "efficientnet-b0.yaml"]
    coeffs = tmp_path / "c.yaml"
    coeffs.write_text("coefficients: {alpha: 1.2, beta: 1.1, gamma: 1.15}\n")
    p = run_cli("family", "--coeffs", str(coeffs), "--phi", "1", "--out", str(tmp_path / "c"))
    assert p.returncode == 0, p.stderr
    assert pd.read_parquet(tmp_path / "c" / "family.parquet").params.tolist() == [OFFICIAL[2][3]]


def test_cli_grid(tmp_path):
    run = tmp_path / "run"
    p = run_cli("grid", "--phi", "1", "--base", "efficientnet-b0", "--run", str(run), "--dry-run")
    assert p.returncode == 0, p.stderr
    table = pd.read_parquet(run / "grid.parquet")
    assert len(table) == len(brute_force_grid())
    assert table.distance.is_monotonic_increasing
    assert "109 points kept" in p.stdout and "EVALUATION" not in p.stdout
    assert load_arch(str(run / "base_arch.yaml")) == B0
    p = run_cli("grid", "--budget", "7", "--run", str(run / "b"), "--top", "0", "--dry-run")
    assert p.returncode == 0 and len(pd.read_parquet(run / "b" / "grid.parquet")) == 7


@pytest.mark.parametrize(
    "args",
    [
        ["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--phi", "-1"],
        ["family", "--alpha", "0", "--beta", "1.1", "--gamma", "1.15"],
        ["family", "--alpha", "1.2", "--beta", "-1.1", "--gamma", "1.15"],
        ["grid", "--alpha-range", "1", "1.1", "--beta-range", "1", "1.1", "--gamma-range", "1", "1.1"],
        ["grid", "--phi", "2"],
        ["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--base", "no-such-net"],
        ["grid", "--base", "missing.yaml"],
        ["grid", "--base", "pyproject.toml"],
        ["family", "--coeffs", "no/such/coefficients.yaml"],
        ["family", "--alpha", "1.2"],
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args, tmp_path):
    p = run_cli(*args, "--out" if args[0] == "family" else "--run", str(tmp_path / "o"))
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    assert "Traceback" not in p.stderr + p.stdout
    assert not (tmp_path / "o").exists()


def test_cli_in_process_edges(tmp_path, capsys):
    from scaling.cli import main

    run = tmp_path / "run"
    assert main(["grid", "--run", str(run), "--top", "3", "--dry-run"]) == 0
    coeffs = load_coefficients(str(run / "coefficients.yaml"))  # the top-ranked point feeds `scale family`
    assert abs(flops_factor(*coeffs) - 2) == pd.read_parquet(run / "grid.parquet").distance.min()
    assert main(["family", "--coeffs", str(run / "coefficients.yaml"), "--phi", "2", "--out", str(tmp_path / "f")]) == 0
    capsys.readouterr()
    for argv in (
        ["family", "--preset", "efficientnet", "--phi", "1", "--phis", "0-3"],
        ["family", "--preset", "efficientnet", "--base", "mnasnet-a1"],
        ["family", "--preset", "efficientnet", "--phi", "9"],
        ["family", "--preset", "efficientnet", "--phis", "seven"],
        ["family", "--alpha", "1.2", "--beta", "1.1", "--gamma", "1.15", "--coeffs", "x.yaml"],
        ["grid", "--step", "-0.05"],
        ["grid", "--top", "-1"],
    ):
        assert main([*argv, "--out" if argv[0] == "family" else "--run", str(tmp_path / "bad")]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), (argv, err)
    with pytest.raises(SystemExit) as e:
        main(["family", "--preset", "efficientnet", "--phi", "1.5"])  # argparse's own errors: also one line
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: argument --phi")
    assert not (tmp_path / "bad").exists()


def test_cli_grid_trains_candidates_and_resumes(tmp_path):
    """Real proxy training of each kept point (tiny budget), then a re-run reuses the evaluations."""
    run = tmp_path / "g"
    args = ["grid", "--budget", "2", "--run", str(run), "train.epochs=1", "data.limit=150", "data.resolution=16",
            "device=cpu"]  # fmt: skip
    p = run_cli(*args)
    assert p.returncode == 0, p.stderr
    table = pd.read_parquet(run / "grid.parquet")
    assert len(table) == 2 and table["accuracy"].between(0, 1).all()
    assert (table["proxy_resolution"] >= 16).all() and (table["seconds"] > 0).all()
    assert "ranked by accuracy" in p.stdout
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 2
    p = run_cli(*args)  # resumable: nothing is trained again
    assert p.returncode == 0, p.stderr
    assert len((run / "evaluations.jsonl").read_text().splitlines()) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(run / "grid.parquet"), table)
    assert "data.limit" in (run / "config.yaml").read_text()


def test_cli_family_train(tmp_path):
    p = run_cli("family", "--preset", "efficientnet", "--phis", "0-1", "--out", str(tmp_path / "f"), "--train",
                "train.epochs=1", "data.limit=150", "data.resolution=16", "device=cpu")  # fmt: skip
    assert p.returncode == 0, p.stderr
    t = pd.read_parquet(tmp_path / "f" / "family.parquet")
    assert t["accuracy"].between(0, 1).all() and t["proxy_resolution"].tolist() == [16, 17]


def test_cli_overrides_without_training_rejected(tmp_path):
    p = run_cli("grid", "--dry-run", "data=npz", "--run", str(tmp_path / "o"))
    assert p.returncode == 2 and p.stderr.startswith("error:")
