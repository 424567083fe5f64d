"""numerics.matrix_program against the same expressions multiplied out matrix by matrix in NumPy."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from sigprop.numerics.matrix_program import MatrixProgram
from sigprop.theory import finite_width as F

n_sym = sp.Symbol("n", positive=True, integer=True)
X, Y, D = sp.MatrixSymbol("X", n_sym, n_sym), sp.MatrixSymbol("Y", n_sym, 2), sp.MatrixSymbol("D", n_sym, n_sym)
t = sp.Symbol("t", real=True)


def _random_path(rng, C=3, n=7):
    k = rng.standard_normal((2, C, n, n))
    m = rng.standard_normal((2, C, n, n))
    return {"K": k[0] + k[0].transpose(0, 2, 1), "K_q": k[1] + k[1].transpose(0, 2, 1),      # symmetric, as K is
            "M": m[0] + m[0].transpose(0, 2, 1), "M_q": m[1] + m[1].transpose(0, 2, 1),
            "Ehat": np.linalg.qr(rng.standard_normal((C, n, 2)))[0], "A": rng.standard_normal((C, n, 2)),
            "G": rng.standard_normal((C, n, n)),
            "D_p": rng.random((C, n)), "D_q": rng.random((C, n)), "alpha": 0.7, "beta": 0.4, "s": 0.3, "n": n}


def test_theory_residual_steps_and_covariance_match_explicit_products():
    v = _random_path(np.random.default_rng(0))
    step = MatrixProgram(F.residual_tangent_step(), diagonal=F.DIAGONAL)(**v)
    jacobian = MatrixProgram(F.residual_jacobian(), diagonal=F.DIAGONAL)(**v)
    B_p = MatrixProgram(F.residual_increment_gradient(), diagonal=F.DIAGONAL)(**v)
    B_q = MatrixProgram(F.residual_increment_gradient(), diagonal=F.DIAGONAL)(**{**v, "K": v["K_q"], "M": v["M_q"],
                                                                                   "D_p": v["D_q"]})
    cov = MatrixProgram(F.residual_increment_covariance(), diagonal=F.DIAGONAL)(**v, B_p=B_p, B_q=B_q)
    product = MatrixProgram(F.residual_product_step())(J=jacobian, M=v["M"])
    a, b, s, n = v["alpha"], v["beta"], v["s"], v["n"]
    for c in range(v["K"].shape[0]):
        K, Kq, E, A = v["K"][c], v["K_q"][c], v["Ehat"][c], v["A"][c]
        Dp, Dq, P = np.diag(v["D_p"][c]), np.diag(v["D_q"][c]), np.eye(n) - v["Ehat"][c] @ v["Ehat"][c].T
        want = (a * a * K + a * b * np.sqrt(s) * (E @ A.T @ Dp @ K + K @ Dq @ A @ E.T)
                + b * b * s * (E @ A.T @ Dp @ K @ Dq @ A @ E.T + np.trace(Dp @ K @ Dq) * P))
        np.testing.assert_allclose(step[c], want, rtol=1e-12, atol=1e-12)
        M, Mq = v["M"][c], v["M_q"][c]
        Jp, Jq = a * np.eye(n) + b * np.sqrt(s) * Dp @ A @ E.T, a * np.eye(n) + b * np.sqrt(s) * Dq @ A @ E.T
        want = (4 * b * b * s * np.trace(Dp @ K @ Jp @ M @ P @ Mq @ Jq.T @ Kq @ Dq)
                + 2 * b**4 * s * s * np.trace(Dp @ K @ Dp @ Dq @ Kq @ Dq) * np.trace(P @ M @ P @ P @ Mq @ P))
        assert cov[c] == pytest.approx(want, rel=1e-12)
        want = Jp + b * np.sqrt(s) * Dp @ v["G"][c] @ P
        np.testing.assert_allclose(jacobian[c], want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(product[c], want @ M @ want.T, rtol=1e-12, atol=1e-12)


def test_transposes_powers_identity_diagonal_products_and_scalar_arrays():
    rng = np.random.default_rng(1)
    x, y, d = rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 2)), rng.random((2, 4))
    tv = np.array([0.5, -2.0])
    expr = t * X.T * D**2 * X + sp.Trace(D * X) * sp.Identity(n_sym) - (Y * Y.T).T + D
    got = MatrixProgram(expr, diagonal=(D,))(X=x, Y=y, D=d, t=tv, n=4)
    for c in range(2):
        Dm = np.diag(d[c])
        want = tv[c] * x[c].T @ Dm @ Dm @ x[c] + np.trace(Dm @ x[c]) * np.eye(4) - (y[c] @ y[c].T).T + Dm
        np.testing.assert_allclose(got[c], want, rtol=1e-12, atol=1e-12)
    inputs = {"X": x, "Y": y, "D": d, "t": tv, "n": 4}
    assert np.shares_memory(MatrixProgram(X)(**inputs), x) is False        # one factor: a copy, never the input
    before = x.copy()
    np.testing.assert_array_equal(MatrixProgram(3 * X.T)(**inputs), 3 * np.swapaxes(before, 1, 2))
    np.testing.assert_array_equal(x, before)                                 # a transposed input is not scaled in place
    np.testing.assert_allclose(MatrixProgram(sp.Trace(X * X.T))(**inputs), np.sum(x * x, axis=(1, 2)))


def test_expressions_it_cannot_evaluate_are_refused():
    with pytest.raises(ValueError, match="positive integer powers"):
        MatrixProgram(X ** -1)
    with pytest.raises(ValueError, match="not a sum of products"):
        MatrixProgram(sp.Inverse(X) * X + sp.HadamardProduct(X, X))
