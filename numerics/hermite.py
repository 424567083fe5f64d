"""Gaussian kernels of smooth functions as Hermite (Mehler) series, for many variances at once.

For z ~ N(0, 1) and the orthonormal probabilists' Hermite polynomials h_n = He_n/√(n!), a function of finite
variance expands as f(√q z) = Σ_n a_n(q) h_n(z), a_n(q) = E[f(√q z) h_n(z)], and for (u, v) ~ N(0, [[q₁, k],
[k, q₂]]) with ρ = k/√(q₁q₂) Mehler's formula gives

    E[f(u) g(v)] = Σ_n a_n(q₁) b_n(q₂) ρⁿ

(Mehler 1866; the dual-activation view of Daniely, Frostig & Singer 2016). The coefficients cost one matrix
product per batch of variances (fixed Gauss–Hermite nodes in z, the same for every q), after which the kernel
at any ρ is a polynomial: the whole correlation map at a variance costs what one quadrature would.

The truncation is bounded, not guessed: by Parseval E[f(√q z)²] = Σ a_n², so the tail after N terms is
T_f(q) = E[f²] − Σ_{n≤N} a_n² ≥ 0 and, for |ρ| ≤ 1, |Σ_{n>N} a_n b_n ρⁿ| ≤ √(T_f T_g) (Cauchy–Schwarz).
E[f²] comes from an independent 1-D rule; its mismatch with the Gauss–Hermite rule's own E[f²] (by the discrete
Parseval identity exactly the sum of all computed squares) measures the nodes' quadrature error, and is added
to the bound. The coefficients of an analytic f decay like exp(−τ√(2n)), τ the half-width of f(√q z)'s strip of
analyticity, so smooth activations at moderate q converge in tens of terms; a kink makes them decay only
algebraically, the bound then stays large, and callers use another rule.

Example
-------
>>> import numpy as np
>>> from sigprop.numerics.hermite import coefficients, mehler
>>> a = coefficients(np.tanh, np.array([1.0]), 64)
>>> value = mehler(a, a, np.array([0.5]))          # E[tanh(u) tanh(v)], q₁ = q₂ = 1, ρ = 0.5
>>> round(float(value[0]), 12)
0.186324413203
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: (terms, nodes) of the rules tried in turn; twice as many nodes as terms keeps the top coefficients exact for
#: polynomials of degree up to 3N and analytic f to the same order as the truncation
LEVELS = ((48, 128), (160, 384), (400, 900))


def reach(nodes: int) -> float:
    """The largest variance at which ``nodes`` Gauss–Hermite nodes, about π/√(2·nodes) apart near 0, can resolve
    f(√q z)'s feature at 0 (width 1/√q in z) with three nodes across it; beyond it callers skip the rule."""
    return 2 * nodes / (3 * np.pi) ** 2


@lru_cache(maxsize=8)
def _basis(terms: int, nodes: int):
    """Gauss–Hermite nodes z_j (standard normal weight), their weights w_j, and w_j h_n(z_j) for n ≤ terms,
    computed as √w_j times the Hermite functions √w_j h_n(z_j), which stay O(1) where h_n alone would overflow."""
    from scipy.special import roots_hermitenorm      # 0.2 s to import: only where a series is taken
    z, w = roots_hermitenorm(nodes)
    w = w / np.sqrt(2 * np.pi)
    root = np.sqrt(w)
    psi = np.empty((nodes, terms + 1))
    psi[:, 0] = root
    if terms:
        psi[:, 1] = z * root
    for n in range(1, terms):
        psi[:, n + 1] = (z * psi[:, n] - np.sqrt(n) * psi[:, n - 1]) / np.sqrt(n + 1)
    return z, w, root[:, None] * psi


def coefficients(f, q: np.ndarray, terms: int, nodes: int | None = None, chunk: int = 4096):
    """a_n(q) = E[f(√q z) h_n(z)] for n = 0..terms, one row per entry of the 1-D array ``q`` (≥ 0)."""
    nodes = nodes or 2 * terms + 32
    z, _, basis = _basis(terms, nodes)
    q = np.asarray(q, dtype=float)
    out = np.empty((q.size, terms + 1))
    for i in range(0, q.size, chunk):
        s = np.sqrt(q[i:i + chunk])[:, None]
        with np.errstate(over="ignore"):    # np.select evaluates every branch of a piecewise f
            values = np.broadcast_to(f(s * z[None, :]), (s.shape[0], z.size))
        out[i:i + chunk] = values @ basis
    return out


#: the panel rule for coefficients: Gauss–Legendre order and reach in z (h_n φ^½ < e^-36 beyond 12)
PANEL_ORDER, PANEL_TAIL = 12, 12.0


def panel_width(terms: int) -> float:
    """Panels narrow enough for h_n, n ≤ ``terms``: wavenumber k ≈ √(2n+1) near 0, and a 12-point rule on a panel
    of width w errs by about (e w k/48)^24, below 1e-12 for w k ≤ 5."""
    return min(0.5, 5.0 / np.sqrt(2 * terms + 1))


def panel_coefficients(f, q: np.ndarray, terms: int, kinks=(), chunk: int = 512):
    """a_n(q) for n = 0..terms by a composite Gauss–Legendre rule in z instead of Gauss–Hermite nodes: panels of
    :func:`panel_width` over ±12 (each resolves h_n's oscillations, whose wavelength is about 2π/√(2n) near 0),
    merged with edges graded towards f(√q z)'s features (0, and each kink κ/√q) from the scale min(1, 1/√q)/64 up.
    For steep or kinked f, whose features fall between Gauss–Hermite nodes. Returns the coefficients and the rule's
    own E[f(√q z)²] (compare it with an independent rule to measure the nodes' error)."""
    from .quadrature import _rule1_array
    q = np.asarray(q, dtype=float)
    out, square = np.empty((q.size, terms + 1)), np.empty(q.size)
    for i in range(0, q.size, chunk):
        part = q[i:i + chunk]
        u, w = _rule1_array(part, PANEL_ORDER, tuple(kinks), tail=PANEL_TAIL, width=panel_width(terms))
        z = u / np.sqrt(part)[:, None]
        with np.errstate(over="ignore"):    # np.select evaluates every branch of a piecewise f
            wf = w * np.broadcast_to(f(u), u.shape)
            square[i:i + chunk] = np.sum(wf * np.broadcast_to(f(u), u.shape), axis=1)
        h_prev, h = np.zeros_like(z), np.ones_like(z)
        for n in range(terms + 1):
            out[i:i + chunk, n] = np.sum(wf * h, axis=1)
            h_prev, h = h, (z * h - np.sqrt(n) * h_prev) / np.sqrt(n + 1)
    return out, square


def gauss_hermite_square(f, q: np.ndarray, nodes: int, chunk: int = 4096) -> np.ndarray:
    """E[f(√q z)²] by the same Gauss–Hermite rule (= Σ over all `nodes` coefficients' squares)."""
    z, w = _basis(0, nodes)[:2]
    q = np.asarray(q, dtype=float)
    out = np.empty(q.size)
    for i in range(0, q.size, chunk):
        s = np.sqrt(q[i:i + chunk])[:, None]
        with np.errstate(over="ignore"):    # np.select evaluates every branch of a piecewise f
            values = np.broadcast_to(f(s * z[None, :]), (s.shape[0], z.size))
        out[i:i + chunk] = values ** 2 @ w
    return out


def mehler(a: np.ndarray, b: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Σ_n a_n b_n ρⁿ, row by row (a, b: (P, N+1); ρ: (P,))."""
    return power_series(np.ascontiguousarray((a * b).T), rho)


def power_series(coef: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Σ_n coef[n] ρⁿ by Horner's rule, for coef of shape (N+1, P) (one column per point, rows contiguous)."""
    out = coef[-1].copy()
    for row in coef[-2::-1]:
        out *= rho
        out += row
    return out


def tails(a: np.ndarray, square: np.ndarray) -> np.ndarray:
    """Parseval's bound on the truncated part, E[f²] − Σ a_n², with the rounding of the difference added."""
    kept = np.sum(a * a, axis=1)
    return np.maximum(square - kept, 0.0) + 8 * np.finfo(float).eps * np.abs(square)
