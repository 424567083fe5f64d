"""Finite width: what a network of width n shows, seed to seed, beyond the mean-field (n → ∞) limit.

At finite width a representation's norm, the Jacobian J = ∂x^l/∂x⁰ and hence GSC and the gradient correlation
fluctuate from one sampled network to the next, and their means move away from the mean-field values by O(depth/
width) (Hanin & Nica 2019, products of many large random matrices; Li, Nica & Roy 2022, the double limit of depth
and width; Roberts, Yaida & Hanin 2022). sigprop predicts them with a reduction that is exact where it can be
(derived in docs/theory.md, "Finite width"):

**The forward path is sampled exactly at O(n) cost.** For a dense layer h = Wx + b, W = (σ_w/√n_in) G with G_ij ~
N(0, 1), only the projections α_i = Êᵀg_i of each row g_i of G onto an orthonormal basis Ê of the span of the
inputs' representations enter the next representations: h_{p,i} = (σ_w/√n_in) ⟨x_p, Ê⟩·α_i + b_i, α_i ~ N(0, I)
independent across units. So the two inputs' representations are drawn unit by unit, without any n × n matrix.

**First moments of the Jacobian are exact given that path.** Given the path, the rows' parts orthogonal to the
span are still isotropic, so E[M | path] for M = J_p J_{p'}ᵀ is a block B on the span plus an isotropic rest:
its trace t and B (:func:`tangent_mean_step`) follow a linear recursion whose coefficients are sums over units.
Averaged over sampled paths this gives E[‖J‖²_F] and E[tr J_a J_bᵀ], hence the pooled GSC (ratio of quadratic
means) and the pooled gradient correlation at width n, with only Monte Carlo error.

**The seed-to-seed spread of log GSC** needs the fluctuation of tr M, not only its mean. Given the path, with
Z_i = g_iᵀMg_i/tr M and a_i = x̂·g_i (:func:`quadratic_form_moments`), tr M'/tr M = (σ_w²/n_in) Σ_i φ'(h_i)² Z_i
is a sum of n independent terms whose mean and variance depend on M through three invariants: the share f of
tr M along x̂, E₁ = ‖Mx̂‖²/(tr M)² and S = tr M²/(tr M)² (how few directions carry M). The invariants are carried
in conditional expectation (:func:`tangent_spread_step`) — the one approximation — and each layer's log tr M
ratio is drawn log-normal with that mean and variance. Where depth/width is not small, f grows to O(1) (J's
output aligns with x, the effect that keeps a ReLU network's log GSC near its mean-field value far longer than
a layer-by-layer 1/n estimate suggests) and S to O(1); both are carried, not expanded.

**Residual blocks** y = αx + βφ(Wx + b) keep every coordinate of x, so E[J Jᵀ | path] is a full matrix: it is
carried backwards from the output (:func:`residual_tangent_step`, a matrix expression, exact given the path), and
one network's traces are drawn with the variance of the martingale E[‖J‖²_F | path, free weights revealed block by
block] (:func:`residual_increment_covariance`, given the Jacobian below each block, which is drawn:
:func:`residual_jacobian`).

Sums over units are written ``UnitSum(expr)`` (Σ_i expr over the n units of the layer); ``numerics`` expands each
summand in the state symbols and sums its coefficients over sampled units once per layer.

Example
-------
>>> from sigprop.theory import finite_width as F
>>> EZ, VZ = F.quadratic_form_moments()
>>> EZ.rhs
a**2*f - f + 1
>>> sorted(F.tangent_mean_step(), key=str)[:2]
[B'_11, B'_12]
"""
from __future__ import annotations

import sympy as sp

from .formula import Formula

HANIN_NICA = "Hanin & Nica (2019), products of many large random matrices and gradients in deep neural networks"
LI_NICA_ROY = "Li, Nica & Roy (2022), the neural covariance SDE: shaped infinite depth-and-width networks"
SOURCE = f"{HANIN_NICA}; {LI_NICA_ROY}; the path reduction derived (docs/theory.md, 'Finite width')"


class UnitSum(sp.Function):
    """Σ_i expr over the units i of a layer (unevaluated; ``numerics`` sums sampled units)."""

    nargs = 1

    def _latex(self, printer):
        return r"\sum_{i} \left(%s\right)" % printer._print(self.args[0])

    def _sympystr(self, printer):
        return f"Σ_i({printer._print(self.args[0])})"


#: per-unit quantities of one layer: the row's projections on the span basis, the derivatives φ'(h_{p,i}) of the
#: two members p, p' of a pair, and the unit's components of the new span basis ê'₁, ê'₂
alpha1, alpha2 = sp.symbols("alpha_1 alpha_2", real=True)
dphi_p, dphi_q = sp.symbols("d_p d_q", real=True)
e1_new, e2_new = sp.symbols("e'_1 e'_2", real=True)
#: the layer's scale σ_w²/n_in
s = sp.Symbol("s", positive=True)
#: state of E[M | path]: its trace t and its block B on the span basis
t = sp.Symbol("t", real=True)
b11, b12, b21, b22 = sp.symbols("b_11 b_12 b_21 b_22", real=True)
#: per-unit quantities of one input: a = x̂·g_i, w = φ'(h_i)², v = φ'(h_i) x̂'_i (x̂' the new unit direction)
a, w, v = sp.symbols("a w v", real=True)
#: invariants of M for one input: f = x̂ᵀMx̂/tr M, E₁ = ‖Mx̂‖²/(tr M)², S = tr M²/(tr M)²
f, E1, Sq = sp.symbols("f E_1 S", real=True)

MEAN_STATE = (t, b11, b12, b21, b22)
SPREAD_STATE = (f, E1, Sq)
UNIT_PAIR = (alpha1, alpha2, dphi_p, dphi_q, e1_new, e2_new)
UNIT_ONE = (a, w, v)


def tangent_mean_step() -> dict:
    """One dense layer's map of E[M | path] for M = J_p J_{p'}ᵀ: {t': …, B'_jk: …} in the state (t, B).

    t' = s[Σ_i w_i α_iᵀBα_i + (t − tr B) Σ_i w_i],  B'_jk = s[U_jᵀ B V_k + (t − tr B) Σ_i u_{j,i} v_{k,i}]
    with w_i = φ'(h_{p,i})φ'(h_{p',i}), u_{j,i} = φ'(h_{p,i}) ê'_{j,i}, v_{k,i} = φ'(h_{p',i}) ê'_{k,i},
    U_j = Σ_i u_{j,i} α_i, V_k = Σ_i v_{k,i} α_i: from E[g_iᵀMg_{i'} | α] = α_iᵀBα_{i'} + δ_{ii'}(t − tr B).
    """
    B = sp.Matrix([[b11, b12], [b21, b22]])
    al = sp.Matrix([alpha1, alpha2])
    rest = t - b11 - b22
    wt = dphi_p * dphi_q
    out = {sp.Symbol("t'"): s * (UnitSum(sp.expand(wt * (al.T * B * al)[0])) + rest * UnitSum(wt))}
    e_new = (e1_new, e2_new)
    for j in range(2):
        U = sp.Matrix([UnitSum(dphi_p * e_new[j] * alpha1), UnitSum(dphi_p * e_new[j] * alpha2)])
        for k in range(2):
            V = sp.Matrix([UnitSum(dphi_q * e_new[k] * alpha1), UnitSum(dphi_q * e_new[k] * alpha2)])
            diag = UnitSum(dphi_p * e_new[j] * dphi_q * e_new[k])
            out[sp.Symbol(f"B'_{j + 1}{k + 1}")] = s * ((U.T * B * V)[0] + rest * diag)
    return out


def quadratic_form_moments() -> tuple[Formula, Formula]:
    """E and Var of Z = gᵀMg/tr M given a = x̂·g, for g ~ N(0, I) and fixed M ⪰ 0 (exact):
    E[Z | a] = a²f + 1 − f,  Var[Z | a] = 4a²(E₁ − f²) + 2(S − 2E₁ + f²)."""
    ez = a**2 * f + 1 - f
    vz = 4 * a**2 * (E1 - f**2) + 2 * (Sq - 2 * E1 + f**2)
    return (Formula(sp.Symbol("E[Z|a]"), ez, SOURCE, "mean of a row's quadratic form in M"),
            Formula(sp.Symbol("Var[Z|a]"), vz, SOURCE, "variance of a row's quadratic form in M"))


def tangent_spread_step() -> dict:
    """One dense layer for one input: the mean ``mu`` and variance ``var`` of tr M'/tr M given the path, and the
    invariants (f', E₁', S') carried to the next layer (conditional expectations of r', ‖M'x̂'‖², tr M'² over
    those of tr M' and (tr M')²). U = Σ_i v_i a_i and V = Σ_i v_i² are the path's sums."""
    ez, vz = (F.rhs for F in quadratic_form_moments())
    ve, p2 = E1 - f**2, Sq - 2 * E1 + f**2
    U, V = UnitSum(v * a), UnitSum(v**2)
    mu = s * UnitSum(sp.expand(w * ez))
    var = s**2 * UnitSum(sp.expand(w**2 * vz))
    swa2, sw = UnitSum(w * a**2), UnitSum(w)
    m2 = s**2 * (UnitSum(sp.expand(w**2 * (ez**2 + vz))) + f**2 * (swa2**2 - UnitSum(w**2 * a**4))
                 + 2 * ve * (swa2 * sw - UnitSum(w**2 * a**2)) + p2 * (sw**2 - UnitSum(w**2)))
    r = s * (UnitSum(sp.expand(v**2 * ez)) + f * (U**2 - UnitSum(v**2 * a**2)))
    uk = U - v * a
    e1 = s**2 * UnitSum(sp.expand(w * (v**2 * (ez**2 + vz) + 2 * v * uk * (a * f * ez + 2 * a * ve)
                                       + uk**2 * (a**2 * f**2 + ve) + (V - v**2) * (a**2 * ve + p2))))
    second = mu**2 + var
    return {"mu": mu, "var": var, "f": r / mu, "E1": e1 / second, "S": m2 / second}


def lognormal_log_moments(mean, var) -> tuple[sp.Expr, sp.Expr]:
    """Mean and variance of log X for a log-normal X with E[X] = mean, Var[X] = var:
    log mean − σ²/2 and σ² = log(1 + var/mean²)."""
    s2 = sp.log(1 + var / mean**2)
    return sp.log(mean) - s2 / 2, s2


#: the residual route (networks with residual blocks, whose skip keeps every coordinate of x): matrices on a layer's
#: n units. K = E[J_{>l,p}ᵀ J_{>l,p'} | path], the Jacobian from the block's output to the network's; Ê an
#: orthonormal basis of the span of the block's two inputs; A the rows' projections α_i on it (one row per unit);
#: D_p = diag φ'(h_{p,i}), given by its diagonal
n_units = sp.Symbol("n", positive=True, integer=True)
K, K_q = sp.MatrixSymbol("K", n_units, n_units), sp.MatrixSymbol("K_q", n_units, n_units)
#: M = J_{<l,p} J_{<l,p}ᵀ: the Jacobian from a start layer up to the block's input, times its transpose
M, M_q = sp.MatrixSymbol("M", n_units, n_units), sp.MatrixSymbol("M_q", n_units, n_units)
Ehat, A = sp.MatrixSymbol("Ehat", n_units, 2), sp.MatrixSymbol("A", n_units, 2)
#: G̃: the block's free weights, i.i.d. N(0, 1) (only their part off the span, G̃(I − ÊÊᵀ), enters)
G_free = sp.MatrixSymbol("G", n_units, n_units)
#: J_p: one block's Jacobian for input p given its free weights (:func:`residual_jacobian`)
J_block = sp.MatrixSymbol("J", n_units, n_units)
#: B_p = D_pKJ̄_pM_p(I − ÊÊᵀ): the matrix of the linear part of one block's increment (:func:`residual_increment_gradient`)
B_p, B_q = sp.MatrixSymbol("B_p", n_units, n_units), sp.MatrixSymbol("B_q", n_units, n_units)
D_p, D_q = sp.MatrixSymbol("D_p", n_units, n_units), sp.MatrixSymbol("D_q", n_units, n_units)
#: the block y = αx + βφ(Wx + b): skip and branch weights (a dense block is α = 0, β = 1)
skip_weight, branch_weight = sp.symbols("alpha beta", real=True)
DIAGONAL = (D_p, D_q)


def _off_span():
    return sp.Identity(n_units) - Ehat * Ehat.T


def residual_tangent_step() -> sp.MatrixExpr:
    """One block y = αx + βφ(Wx + b) backwards: E[J_pᵀ K J_{p'} | path] for J_p = αI + βD_pW, from K (the
    Jacobian above it; K = I at the network's output).

    Given the path (every representation of both inputs), W = √s AÊᵀ + √s G̃(I − ÊÊᵀ) with G̃ i.i.d. N(0, 1) and
    independent of the path and of the other layers, so E[W] = √s AÊᵀ and E[G̃ᵀXG̃] = tr(X) I:
    E[J_pᵀKJ_{p'}] = α²K + αβ√s(ÊAᵀD_pK + KD_{p'}AÊᵀ) + β²s(ÊAᵀD_pKD_{p'}AÊᵀ + tr(D_pKD_{p'})(I − ÊÊᵀ)).
    Exact: tr of the result at every layer gives E[‖J‖²_F | path] and E[tr J_aJ_bᵀ | path] for every start."""
    a, b = skip_weight, branch_weight
    return (a**2 * K + a * b * sp.sqrt(s) * (Ehat * A.T * D_p * K + K * D_q * A * Ehat.T)
            + b**2 * s * (Ehat * A.T * D_p * K * D_q * A * Ehat.T + sp.Trace(D_p * K * D_q) * _off_span()))


def _mean_jacobian(D):
    """E[J | path] = αI + β√s D AÊᵀ."""
    return skip_weight * sp.Identity(n_units) + branch_weight * sp.sqrt(s) * D * A * Ehat.T


def residual_jacobian() -> sp.MatrixExpr:
    """One block's Jacobian given the path and the block's free weights G̃: J_p = αI + β√s D_p(AÊᵀ + G̃(I − ÊÊᵀ))
    (W = √s AÊᵀ + √s G̃(I − ÊÊᵀ), :func:`residual_tangent_step`). Its mean over G̃ is J̄_p = αI + β√s D_pAÊᵀ."""
    return _mean_jacobian(D_p) + branch_weight * sp.sqrt(s) * D_p * G_free * _off_span()


def residual_product_step() -> sp.MatrixExpr:
    """The product below the next block: M_{l+1} = J_l M_l J_lᵀ for M_l = J_{<l}J_{<l}ᵀ (I at the start layer) and
    J_l the block's Jacobian (:func:`residual_jacobian`, drawn)."""
    return J_block * M * J_block.T


def residual_increment_gradient() -> sp.MatrixExpr:
    """B_p = D_pKJ̄_pM_p(I − ÊÊᵀ): one block's increment tr(J_pM_pJ_pᵀK) is linear in G̃ through 2β√s⟨G̃, B_p⟩_F
    (K and M_p symmetric) plus a Gaussian quadratic form (:func:`residual_increment_covariance`)."""
    return D_p * K * _mean_jacobian(D_p) * M * _off_span()


def residual_increment_covariance() -> sp.Expr:
    """Cov[tr(J_pM_pJ_pᵀK), tr(J_qM_qJ_qᵀK_q) | path, M_p, M_q] over one block's free weights G̃, for M_p, M_q the
    Jacobians' products below the block and K, K_q the conditional means above it (symmetric): the linear part
    2β√s⟨G̃, B_p⟩_F (B_p :func:`residual_increment_gradient`) and the quadratic part β²s tr(D_pG̃PM_pPG̃ᵀD_pK)
    (a Gaussian quadratic form with matrix (PM_pP) ⊗ D_pKD_p, P = I − ÊÊᵀ) are uncorrelated, so
    Cov = 4β²s tr(B_pB_qᵀ) + 2β⁴s² tr(D_pKD_pD_qK_qD_q) tr(PM_pPM_q) (P² = P).

    These are the increments of the martingale E[tr J Jᵀ | path, the blocks' free parts revealed from the start
    up]: summed over the blocks, their means over the free weights below each block give the exact conditional
    variance of one network's ‖J‖²_F (Rao–Blackwell: the block's own free weights and those above are integrated
    out in closed form)."""
    b, P = branch_weight, _off_span()
    return (4 * b**2 * s * sp.Trace(B_p * B_q.T)
            + 2 * b**4 * s**2 * sp.Trace(D_p * K * D_p * D_q * K_q * D_q) * sp.Trace(P * M * P * M_q))


def start_state(n) -> dict:
    """The state where the Jacobian starts (J = I on n units): t = n, B = I; f = S = 1/n, E₁ = 1/n²."""
    n = sp.sympify(n)
    return {t: n, b11: 1, b12: 0, b21: 0, b22: 1, f: 1 / n, Sq: 1 / n, E1: 1 / n**2}
