"""Symbolic derivations with sympy (imported lazily; ``import tokentree`` never loads sympy).

Each function derives a result of docs/theory.md from its definitions, not from the closed
form, and returns the sympy expression together with a numpy function
(``sympy.lambdify``), so tests can compare them with the numerical engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokentree.infra.optional import optional_import

__all__ = ["Derivation", "derive_identity", "derive_ratio", "derive_l_star", "derive_pareto_entropy"]


@dataclass(frozen=True)
class Derivation:
    """A derived expression, its free symbols in argument order, and a numpy function of them."""

    expression: Any
    arguments: tuple[Any, ...]
    function: Any


def _sympy() -> Any:
    return optional_import("sympy", "tokentree.compression.symbolic", "pip install sympy")


def derive_identity(n_symbols: int = 3) -> Derivation:
    """sum_X n_X d CE(P_X, q)/dl for a generic mixture of three datasets on ``n_symbols`` symbols.

    Returns the simplified expression, which is identically 0.

    >>> derive_identity(2).expression
    0
    """
    sp = _sympy()
    k, l = sp.symbols("k l", positive=True)
    p = [[sp.Symbol(f"P{x}_{s}", positive=True) for s in range(n_symbols)] for x in "pat"]
    # each P_X sums to one: eliminate its last entry
    for row in p:
        row[-1] = 1 - sum(row[:-1])
    sizes = [k, sp.Integer(1), l]
    total = k + 1 + l
    q = [sum(n * row[s] for n, row in zip(sizes, p, strict=False)) / total for s in range(n_symbols)]
    ce = [-sum(row[s] * sp.log(q[s]) for s in range(n_symbols)) for row in p]
    expr = sp.simplify(sum(n * sp.diff(c, l) for n, c in zip(sizes, ce, strict=False)))
    args = (k, l, *[v for row in p for v in row[:-1]])
    return Derivation(expr, args, sp.lambdify(args, expr, "numpy"))


def _disjoint_rates() -> tuple[Any, ...]:
    sp = _sympy()
    k, l, b2, b3 = sp.symbols("k l beta_2 beta_3", positive=True)
    h1, h2, h3 = sp.symbols("H_1 H_2 H_3", positive=True)
    b1 = 1 - b2 - b3
    total = k + 1 + l
    m1, m2, m3 = b1 * k / total, (b2 * k + 1) / total, (b3 * k + l) / total
    # Cross-entropy of each part under the mixture: its own entropy minus log of its weight.
    gamma_a = h2 - sp.log(m2)
    gamma_p = b1 * (h1 - sp.log(m1)) + b2 * (h2 - sp.log(m2)) + b3 * (h3 - sp.log(m3))
    return sp, k, l, b2, b3, gamma_a, gamma_p


def derive_ratio() -> Derivation:
    """R(l) = (d gamma_a/dl) / (d gamma_p/dl) for disjoint components, derived by differentiation.

    Arguments: (k, l, beta_2, beta_3).
    """
    sp, k, l, b2, b3, gamma_a, gamma_p = _disjoint_rates()
    expr = sp.simplify(sp.diff(gamma_a, l) / sp.diff(gamma_p, l))
    args = (k, l, b2, b3)
    return Derivation(expr, args, sp.lambdify(args, expr, "numpy"))


def derive_l_star() -> Derivation:
    """l* solving d gamma_p/dl = 0 for disjoint components. Arguments: (beta_3,).

    >>> derive_l_star().expression
    -beta_3/(beta_3 - 1)
    """
    sp, _k, l, _b2, b3, _, gamma_p = _disjoint_rates()
    (solution,) = sp.solve(sp.Eq(sp.diff(gamma_p, l), 0), l)
    expr = sp.simplify(solution)
    return Derivation(expr, (b3,), sp.lambdify((b3,), expr, "numpy"))


def derive_pareto_entropy() -> Derivation:
    """Large-M entropy of normalised Pareto(alpha, x_m) leaf masses (Appendix A.7).

    With masses x_i / sum_j x_j and sum_j x_j ~ M E[x], H = ln M + ln E[x] - E[x ln x]/E[x];
    the expectations are integrated symbolically. Arguments: (M, alpha).
    """
    sp = _sympy()
    t, a, xm, m = sp.symbols("t a x_m M", positive=True)
    alpha = 1 + a  # alpha > 1, so the mean is finite and the integrals converge
    # Substitute x = x_m e^t (t >= 0): the Pareto density times dx becomes alpha e^(-alpha t) dt.
    x = xm * sp.exp(t)
    weight = alpha * sp.exp(-alpha * t)
    mean = sp.simplify(sp.integrate(x * weight, (t, 0, sp.oo)))
    mean_xlogx = sp.simplify(sp.integrate(sp.expand(x * (sp.log(xm) + t) * weight), (t, 0, sp.oo)))
    h = sp.log(m) + sp.log(mean) - mean_xlogx / mean
    alpha_sym = sp.Symbol("alpha", positive=True)
    expr = sp.simplify(sp.expand_log(h.subs(xm, (alpha - 1) / (alpha * m)), force=True).subs(a, alpha_sym - 1))
    return Derivation(expr, (m, alpha_sym), sp.lambdify((m, alpha_sym), expr, "numpy"))
