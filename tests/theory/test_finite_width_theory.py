"""theory.finite_width: each conditional moment against Monte Carlo over the weight rows' free parts.

Given a fixed M and the rows' projections on the span (what the forward path fixes), the layer's tangent map
M' = s D_p G M Gᵀ D_q is computed directly as matrices over many draws of the rows' other parts and compared with
theory's expressions, summed over the units by hand. The tolerance is 5 Monte Carlo standard errors.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from sigprop.theory import finite_width as F

DRAWS = 100_000


def _sum_units(expr, units: dict):
    """Evaluate an expression with UnitSum atoms: each Σ_i over the given per-unit values (inner sums first)."""
    expr = sp.sympify(expr)
    n = len(next(iter(units.values())))
    while expr.has(F.UnitSum):
        atoms = [u for u in expr.atoms(F.UnitSum) if not u.args[0].has(F.UnitSum)]
        expr = expr.xreplace({u: sum(u.args[0].xreplace({k: sp.Float(v[i]) for k, v in units.items()})
                                     for i in range(n)) for u in atoms})
    return expr


def _check(draws, predicted, what):
    mean = draws.mean()
    se = draws.std(ddof=1) / np.sqrt(len(draws))
    assert abs(mean - predicted) < 5 * se + 1e-12, f"{what}: Monte Carlo {mean:.6g} ± {se:.2g}, theory {predicted:.6g}"


@pytest.mark.parametrize("x_kind, a", [("random", 0.7), ("between", 1.5)])
def test_quadratic_form_moments_match_monte_carlo(x_kind, a):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 2))
    M = A @ A.T + 0.1 * np.eye(6)                      # few directions carry M: S is far from 1/n
    x = rng.standard_normal(6) if x_kind == "random" else np.linalg.eigh(M)[1][:, -2:].sum(axis=1)
    x /= np.linalg.norm(x)                             # "between": ‖PMx̂‖ is large, the E₁ − f² term counts
    m = np.trace(M)
    state = {F.f: x @ M @ x / m, F.E1: (M @ x) @ (M @ x) / m**2, F.Sq: np.trace(M @ M) / m**2, F.a: a}
    g = rng.standard_normal((4 * DRAWS, 6))            # enough draws to resolve each term of the variance
    g = g - np.outer(g @ x, x) + a * x                  # rows with x̂·g = a
    Z = np.einsum("ki,ij,kj->k", g, M, g) / m
    ez, vz = (float(fm.rhs.subs(state)) for fm in F.quadratic_form_moments())
    _check(Z, ez, "E[Z|a]")
    _check((Z - ez) ** 2, vz, "Var[Z|a]")


def test_tangent_mean_step_matches_the_layer_map():
    rng = np.random.default_rng(2)
    n_in, n, s = 6, 5, 0.4
    M = rng.standard_normal((n_in, n_in))               # any M (J_a J_bᵀ need not be symmetric)
    alpha = rng.standard_normal((n, 2))                 # the rows' projections on the span (e₁, e₂ of R^n_in)
    d_p, d_q = rng.uniform(0.2, 1.5, n), rng.uniform(0.2, 1.5, n)
    e_new, _ = np.linalg.qr(rng.standard_normal((n, 2)))
    state = {F.t: np.trace(M), F.b11: M[0, 0], F.b12: M[0, 1], F.b21: M[1, 0], F.b22: M[1, 1], F.s: s}
    units = {F.alpha1: alpha[:, 0], F.alpha2: alpha[:, 1], F.dphi_p: d_p, F.dphi_q: d_q,
             F.e1_new: e_new[:, 0], F.e2_new: e_new[:, 1]}
    G = rng.standard_normal((DRAWS, n, n_in))
    G[:, :, :2] = alpha                                 # the path fixes these, the rest is free
    Mn = s * np.einsum("i,kia,ab,kjb,j->kij", d_p, G, M, G, d_q, optimize=True)
    direct = {"t'": np.einsum("kii->k", Mn)}
    for j in range(2):
        for k in range(2):
            direct[f"B'_{j + 1}{k + 1}"] = np.einsum("i,kij,j->k", e_new[:, j], Mn, e_new[:, k])
    for name, expr in F.tangent_mean_step().items():
        _check(direct[str(name)], float(_sum_units(expr, units).subs(state)), str(name))


@pytest.mark.parametrize("rank", [1, 3])
def test_tangent_spread_step_conditional_moments_are_exact(rank):
    """mu, mu² + var and the numerators of f', E₁', S' are exact conditional expectations for a fixed M."""
    rng = np.random.default_rng(3 + rank)
    n_in, n, s = 7, 5, 0.3
    A = rng.standard_normal((n_in, rank))
    M = A @ A.T + 0.05 * np.eye(n_in)
    x = rng.standard_normal(n_in)
    x /= np.linalg.norm(x)
    m = np.trace(M)
    a = rng.standard_normal(n)
    d = rng.uniform(0.2, 1.5, n)
    y = rng.standard_normal(n)
    y /= np.linalg.norm(y)                              # the new direction x̂'
    G = rng.standard_normal((DRAWS, n, n_in))
    G = G - np.einsum("kia,a->ki", G, x)[:, :, None] * x + a[:, None] * x      # x̂·g_i = a_i
    Mn = s * np.einsum("i,kia,ab,kjb,j->kij", d, G, M, G, d, optimize=True)
    m_new = np.einsum("kii->k", Mn)
    direct = {"mu": m_new / m, "second": (m_new / m) ** 2,
              "r": np.einsum("i,kij,j->k", y, Mn, y) / m,
              "m2": np.einsum("kij,kji->k", Mn, Mn) / m**2,
              "e1": np.sum(np.einsum("kij,j->ki", Mn, y) ** 2, axis=1) / m**2}
    state = {F.f: x @ M @ x / m, F.E1: (M @ x) @ (M @ x) / m**2, F.Sq: np.trace(M @ M) / m**2, F.s: s}
    units = {F.a: a, F.w: d**2, F.v: d * y}
    step = {k: float(_sum_units(e, units).subs(state)) for k, e in F.tangent_spread_step().items()}
    second = step["mu"] ** 2 + step["var"]
    theory = {"mu": step["mu"], "second": second, "r": step["f"] * step["mu"], "m2": step["S"] * second,
              "e1": step["E1"] * second}
    for k in direct:
        _check(direct[k], theory[k], k)


def test_lognormal_log_moments_invert_the_lognormal():
    mu, s2 = 0.3, 0.2
    mean, var = np.exp(mu + s2 / 2), (np.exp(s2) - 1) * np.exp(2 * mu + s2)
    lm, lv = F.lognormal_log_moments(sp.Float(mean), sp.Float(var))
    assert float(lm) == pytest.approx(mu, rel=1e-12) and float(lv) == pytest.approx(s2, rel=1e-12)


def test_start_state_is_the_identity():
    st = F.start_state(8)
    assert st[F.t] == 8 and st[F.f] == sp.Rational(1, 8) and st[F.E1] == sp.Rational(1, 64)
