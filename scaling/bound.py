"""How far rounding can move a compound-scaled network's MACs from product^phi.

Notation: d, w, r = alpha^phi, beta^phi, gamma^phi; P = alpha*beta^2*gamma^2;
M = MACs (`search_spaces.cost`); B = the base, B' = the scaled network;
B[n'] = the base with the scaled block counts but base widths and resolution.
The ideal rule says M(B')/M(B) = d w^2 r^2 = P^phi. We bound the quotient
q = M(B') / (M(B) P^phi) by splitting it exactly into two factors:

    q = [M(B[n']) / (d M(B))]  x  [M(B') / (w^2 r^2 M(B[n']))]
          depth factor D            width/resolution factor W

D: ceil adds blocks only, at most one per stage. A stage's extra blocks are
all copies of its repeat block, of MACs R_s at base width, so
M(B[n']) = M(B) + sum_s (n'_s - n_s) R_s exactly. With n_s d <= n'_s < n_s d + 1:

    D in [(1 + (d-1) A) / d, (1 + (d-1) A + C) / d],
    A = sum_s n_s R_s / M(B),  C = sum_s R_s / M(B).

A is not 1 because the first block of a stage (stride, other input width)
costs differently from the repeats, and stem and head do not repeat.

W: B' and B[n'] have the same blocks, so every MAC term of B' is its twin
in B[n'] times width and area factors. With every channel count c rounded
to n = round_filters(c, w), rho = n / (c w) obeys (divisor 8, x = c w):

    max(0.9, 1 - 4/x) <= rho <= max(1 + 4/x, 0.9 + 8/x)

(nearest multiple of 8 is within 4 of x; the "never lose 10%" bump adds 8
only when x < 40). Expanded and SE widths are integer multiples of their
block input, so they inherit its rho. The resolution R r is rounded to R'
within 4 of it; a feature map at cumulative stride S has ceil(R'/S) rows, at
most (S - gcd(S, 8))/S more than R'/S since R' is a multiple of 8, so its
area factor a = (S ceil(R'/S) / (R r))^2 lies in
[(1 - 4/(R r))^2, (1 + (4 + S - gcd(S, 8))/(R r))^2].

Not every term grows like w^2 r^2: 1x1 and full convs do (share sq), the
depthwise convs and the stem grow like w r^2 (sl), SE like w^2 (s0q), the
classifier like w (s0l). These four shares of M(B[n']) come from the one
cost model at exactly doubled widths and resolution (checked at 3x). W is a
MAC-weighted mean of per-term factors, hence, with rho, a at their bounds,

    W in [sq rho^2 a + sl rho a / w + s0q rho^2 / r^2 + s0l rho / (w r^2)]_lo..hi

and q in [D_lo W_lo, D_hi W_hi]. `lower`/`upper` use the a-priori envelopes
above; `tight_lower`/`tight_upper` use the factors that this phi's rounding
actually produced (exact D, realized min/max rho and a): same argument,
smaller interval. Nothing in the argument is specific to B0 (the tests
check it on random bases of every block type). EfficientNet-B0 with (1.2, 1.1, 1.15), shares at phi = 0
sq 0.877, sl 0.118, s0q 0.002, s0l 0.003, A 1.028, C 0.476:

    phi   M ratio   P^phi   2^phi   q = ratio/P^phi   tight interval   a-priori interval
    1       2.229    1.920      2   1.161             [1.003, 1.418]   [0.789, 3.041]
    2       4.693    3.687      4   1.273             [1.112, 1.993]   [0.787, 2.652]
    3       8.432    7.081      8   1.191             [0.999, 1.484]   [0.784, 2.338]
    4      16.380   13.597     16   1.205             [0.974, 1.376]   [0.783, 2.092]
    5      27.063   26.110     32   1.036             [0.893, 1.095]   [0.781, 1.892]
    6      52.099   50.139     64   1.039             [0.872, 1.359]   [0.779, 1.725]
    7     100.467   96.280    128   1.043             [0.968, 1.128]   [0.777, 1.589]

The a-priori upper end is wide because B0 has a 16-channel stage: 16 w can
round up by 35% (x in (17.8, 20) bumps 16 to 24), and a 1x1 conv carries
rho twice. Only the ceil of depth pushes q up systematically (D >= 1.02
here); the width and resolution factors scatter around 1.

Against 2^phi the ratio also drifts by (P/2)^phi = 0.96^phi (0.75 at phi 7):
the paper's 1.92 is "about 2". The bound assumes `scale`'s defaults (ceil
depth rounding, stem and head scaled, divisor 8) and a base whose widths
scale exactly (checked): channels multiples of 8, integer expand ratios,
8 * SE ratio an integer, resolution divisible by the total stride.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from fractions import Fraction

from effnas.errors import UserError
from scaling.compound import compound, flops_factor
from search_spaces import Arch, cost, round_filters, round_repeats, scale
from search_spaces.scale import RESOLUTION_MULTIPLE

DIVISOR = 8


@dataclass(frozen=True)
class RoundingBound:
    phi: float
    ideal: float
    """P^phi."""
    macs_ratio: float
    """Actual MACs(scaled) / MACs(base), each at its own resolution."""
    lower: float
    upper: float
    tight_lower: float
    tight_upper: float

    @property
    def quotient(self) -> float:
        """macs_ratio / P^phi, the number the bound brackets."""
        return self.macs_ratio / self.ideal


def repeat_block_macs(base: Arch) -> list[int]:
    """R_s: the MACs one more repeat of stage s adds to `base`."""
    m0 = cost(base).macs
    out = []
    for i, s in enumerate(base.stages):
        stages = list(base.stages)
        stages[i] = replace(s, repeats=s.repeats + 1)
        out.append(cost(base.replace(stages=tuple(stages))).macs - m0)
    return out


def scaling_shares(arch: Arch) -> tuple[float, float, float, float]:
    """MAC shares growing like w^2 r^2, w r^2, w^2, w (see the module docstring).

    MACs at integer width lam and resolution mu times the arch's are
    lam^2 mu^2 Q + lam mu^2 L + lam^2 Q0 + lam L0 when the multiples are
    exact; solved from lam, mu in {1, 2}, verified at 3.
    """
    if any(c % DIVISOR for c in _channels(arch)):
        raise UserError(f"scaling shares need channel counts that are multiples of {DIVISOR}")

    def m(lam: int, mu: int) -> Fraction:
        return Fraction(cost(scale(arch, width=float(lam)), arch.resolution * mu).macs)

    a1, a2 = [(m(2, mu) - 2 * m(1, mu)) / 2 for mu in (1, 2)]  # lam^2 coefficient at mu
    b1, b2 = m(1, 1) - a1, m(1, 2) - a2
    q, lr = (a2 - a1) / 3, (b2 - b1) / 3
    q0, l0 = a1 - q, b1 - lr
    if min(q, lr, q0, l0) < 0 or m(3, 3) != 81 * q + 27 * lr + 9 * q0 + 3 * l0:
        raise UserError("MACs are not homogeneous in width and resolution for this arch; no bound")
    total = m(1, 1)
    return float(q / total), float(lr / total), float(q0 / total), float(l0 / total)


def _channels(arch: Arch) -> list[int]:
    return [arch.stem, *(s.out_channels for s in arch.stages), *([arch.head] if arch.head else [])]


def _strides(arch: Arch) -> list[int]:
    """Cumulative strides of every feature map (stem output, then each stage's)."""
    out, s = [2], 2
    for st in arch.stages:
        s *= st.stride
        out.append(s)
    return out


def _check_assumptions(base: Arch, r: float) -> None:
    problems = []
    top = _strides(base)[-1]
    if base.resolution % top:
        problems.append(f"resolution {base.resolution} not divisible by the total stride {top}")
    if base.resolution * r < RESOLUTION_MULTIPLE:
        problems.append(f"scaled resolution {base.resolution * r:g} < {RESOLUTION_MULTIPLE}")
    for i, s in enumerate(base.stages, 1):
        if s.expand % 1:
            problems.append(f"stage {i}: expand {s.expand} is not an integer")
        if DIVISOR * s.se_ratio % 1:
            problems.append(f"stage {i}: {DIVISOR} * SE ratio {s.se_ratio} is not an integer")
    if problems:
        raise UserError(f"no rounding bound for this base: {'; '.join(problems)}")


def _mix(shares: tuple[float, float, float, float], rho: float, area: float, w: float, r: float) -> float:
    sq, sl, s0q, s0l = shares
    return sq * rho**2 * area + sl * rho * area / w + s0q * rho**2 / r**2 + s0l * rho / (w * r**2)


def rounding_bound(base: Arch, alpha: float, beta: float, gamma: float, phi: float) -> RoundingBound:
    """Bracket MACs(scaled)/MACs(base)/P^phi for the pure rule (see the module docstring)."""
    d, w, r = compound(alpha, beta, gamma, phi)
    _check_assumptions(base, r)
    m0 = cost(base).macs
    rs = repeat_block_macs(base)
    a_share = sum(s.repeats * x for s, x in zip(base.stages, rs)) / m0
    c_share = sum(rs) / m0
    d_lo, d_hi = (1 + (d - 1) * a_share) / d, (1 + (d - 1) * a_share + c_share) / d
    d_exact = (1 + sum((round_repeats(s.repeats, d) - s.repeats) * x for s, x in zip(base.stages, rs)) / m0) / d

    xs = [c * w for c in _channels(base)]
    rho_lo = min(max(0.9, 1 - DIVISOR / 2 / x) for x in xs)
    rho_hi = max(max(1 + DIVISOR / 2 / x, 0.9 + DIVISOR / x, DIVISOR / x) for x in xs)
    rho = [round_filters(c, w, DIVISOR) / (c * w) for c in _channels(base)]

    rr, half = base.resolution * r, RESOLUTION_MULTIPLE / 2
    area_lo = (1 - half / rr) ** 2
    area_hi = max((1 + (half + s - math.gcd(s, RESOLUTION_MULTIPLE)) / rr) ** 2 for s in _strides(base))
    scaled = scale(base, depth=d, width=w, resolution=r)
    res = scaled.resolution  # what scale() actually chose (phi = 0 keeps the base's)
    area = [(s * -(-res // s) / rr) ** 2 for s in _strides(base)]

    shares = scaling_shares(scale(base, depth=d, resolution=base.resolution))  # B[n']: base widths and size
    product = flops_factor(alpha, beta, gamma)
    return RoundingBound(
        phi=phi,
        ideal=product**phi,
        macs_ratio=cost(scaled).macs / m0,
        lower=d_lo * _mix(shares, rho_lo, area_lo, w, r),
        upper=d_hi * _mix(shares, rho_hi, area_hi, w, r),
        tight_lower=d_exact * _mix(shares, min(rho), min(area), w, r),
        tight_upper=d_exact * _mix(shares, max(rho), max(area), w, r),
    )
