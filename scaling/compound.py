"""The paper's compound rule: depth alpha^phi, width beta^phi, resolution gamma^phi.

EfficientNet (Tan & Le, 2019, eq. 3) fixes alpha * beta^2 * gamma^2 ~= 2 at
phi = 1 by a small grid search, so FLOPs grow by about 2^phi. The rounding of
blocks, channels and resolution is NOT done here: `scale_compound` hands the
three multipliers to `search_spaces.scale`, the one place those rules live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from effnas.errors import UserError
from search_spaces import Arch, cost, scale

PAPER_COEFFICIENTS = (1.2, 1.1, 1.15)
"""(alpha, beta, gamma) found by the paper's grid search at phi = 1."""


def validate(alpha: float, beta: float, gamma: float, phi: float = 1.0) -> None:
    """Raise one ValueError naming every bad value: phi < 0 or a non-positive coefficient."""
    problems = [
        f"{name}={value!r}"
        for name, value in (("alpha", alpha), ("beta", beta), ("gamma", gamma))
        if not _finite_number(value) or not value > 0
    ]
    if problems:
        raise UserError(f"compound coefficients must be finite and > 0, got {', '.join(problems)}")
    if not _finite_number(phi) or not phi >= 0:
        raise UserError(f"phi must be a finite number >= 0, got phi={phi!r}")


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def flops_factor(alpha: float, beta: float, gamma: float) -> float:
    """FLOPs growth per unit of phi under the ideal (unrounded) rule: alpha * beta^2 * gamma^2."""
    validate(alpha, beta, gamma)
    return alpha * beta**2 * gamma**2


class Multipliers(NamedTuple):
    """Nominal multipliers of one family member, before rounding, in the coefficients' order
    (alpha: depth, beta: width, gamma: resolution). The one order used across `scaling`."""

    depth: float
    width: float
    resolution: float
    """Factor of the base's resolution."""


def compound(alpha: float, beta: float, gamma: float, phi: float) -> Multipliers:
    """(depth, width, resolution factor) = (alpha^phi, beta^phi, gamma^phi), always floats."""
    validate(alpha, beta, gamma, phi)
    # float(): `scale` reads an int resolution as an exact size, so gamma=1, phi=1 must stay 1.0.
    return Multipliers(float(alpha) ** phi, float(beta) ** phi, float(gamma) ** phi)


def scale_compound(base: Arch, alpha: float, beta: float, gamma: float, phi: float, **scale_options: Any) -> Arch:
    """`base` scaled by the compound rule; rounding by `search_spaces.scale`.

    The resolution factor multiplies `base.resolution` and is rounded by
    `scale`'s resolution rule. `scale_options` go to `scale` unchanged
    (`scale_stem_head`, `fix_first_last_repeats`, `depth_rounding`, `divisor`,
    `dropout`, `name`); the name defaults to `<base name>-phi<phi>`.
    """
    depth, width, resolution = compound(alpha, beta, gamma, phi)
    scale_options.setdefault("name", f"{base.name or 'arch'}-phi{phi:g}")
    return scale(base, depth=depth, width=width, resolution=resolution, **scale_options)


@dataclass(frozen=True)
class CompoundCheck:
    """How far rounding moves a compound-scaled network from the ideal FLOPs growth."""

    alpha: float
    beta: float
    gamma: float
    phi: float
    product: float
    """alpha * beta^2 * gamma^2 (the rule's FLOPs growth per unit of phi)."""
    ideal_ratio: float
    """product ** phi."""
    macs_ratio: float
    """MACs(scaled at its resolution) / MACs(base at its resolution), after rounding."""
    params_ratio: float
    scaled: Arch

    @property
    def rounding_factor(self) -> float:
        """macs_ratio / ideal_ratio: 1.0 would mean rounding changed nothing."""
        return self.macs_ratio / self.ideal_ratio

    def summary(self) -> str:
        return (
            f"alpha={self.alpha:g} beta={self.beta:g} gamma={self.gamma:g} phi={self.phi:g}: "
            f"alpha*beta^2*gamma^2 = {self.product:.5f}, ideal MACs ratio {self.ideal_ratio:.4f}, "
            f"actual after rounding {self.macs_ratio:.4f} (x{self.rounding_factor:.4f}) "
            f"at {self.scaled.resolution}px"
        )


def check_compound(
    base: Arch, alpha: float, beta: float, gamma: float, phi: float = 1.0, **scale_options: Any
) -> CompoundCheck:
    """Report alpha*beta^2*gamma^2 and the actual MACs ratio of the rounded network to `base`.

    Each network is counted at its own resolution.
    """
    scaled = scale_compound(base, alpha, beta, gamma, phi, **scale_options)
    c0, c1 = cost(base), cost(scaled)
    product = flops_factor(alpha, beta, gamma)
    return CompoundCheck(
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        phi=phi,
        product=product,
        ideal_ratio=product**phi,
        macs_ratio=c1.macs / c0.macs,
        params_ratio=c1.params / c0.params,
        scaled=scaled,
    )


def load_coefficients(path: str) -> tuple[float, float, float]:
    """(alpha, beta, gamma) from a YAML mapping, at top level or under `coefficients:`."""
    from effnas.config import load_yaml

    data = load_yaml(path, "coefficients file")
    if isinstance(data, dict) and isinstance(data.get("coefficients"), dict):
        data = data["coefficients"]
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with alpha, beta, gamma, got {type(data).__name__}")
    missing = [k for k in ("alpha", "beta", "gamma") if k not in data]
    if missing:
        raise UserError(f"{path}: missing {', '.join(missing)} (expected alpha, beta, gamma)")
    alpha, beta, gamma = data["alpha"], data["beta"], data["gamma"]
    try:
        validate(alpha, beta, gamma)
    except ValueError as e:
        raise UserError(f"{path}: {e}") from None
    return float(alpha), float(beta), float(gamma)
