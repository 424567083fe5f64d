"""Numbers for an activation's Gaussian expectations: closed forms where theory has them, quadrature otherwise.

:func:`quadrature_function` integrates φ and φ' that theory defines (lambdified once), with panel edges at the
activation's kinks; it is what an unevaluated expectation in a compiled map is bound to. :func:`expectation`
evaluates one expectation of any activation by whichever route theory offers, and is the single numeric
entry point users and the conformance tests call.

Example
-------
>>> from sigprop.theory import relu, tanh
>>> from sigprop.numerics import expectation
>>> expectation(relu, "square", 2.0)
1.0
>>> round(expectation(tanh, "kernel", 1.0, 1.0, 0.5), 12)
0.186324413203
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp

from ..theory.determinant import covariance_determinant as theory_determinant
from ..theory.expectations import ARITY, KINDS, METHOD, GaussianExpectation
from ..theory.symbols import k as K, q as Q, q1 as Q1, q2 as Q2, x
from .determinant import covariance_determinant
from .quadrature import expect1, expect2

#: functions the lambdified closed forms call, beyond numpy: the exact determinant, and a square root that
#: reads a determinant rounded a hair below 0 as 0 (at |c| = 1)
NUMERIC_FUNCTIONS = {"exact_covariance_determinant": covariance_determinant,
                     "sqrt": lambda v: np.sqrt(np.maximum(v, 0.0))}


class exact_covariance_determinant(sp.Function):  # noqa: N801 - the name lambdify prints and binds
    """Stands for theory's covariance determinant in compiled code, bound to the exact-product evaluation."""

    nargs = 3


def for_numerics(expr):
    """``expr`` ready to lambdify: the covariance determinant replaced by its exact evaluation."""
    return sp.sympify(expr).replace(theory_determinant, exact_covariance_determinant)


@lru_cache(maxsize=None)
def activation_functions(act) -> tuple[Callable, Callable]:
    """Vectorized φ and φ' of an activation (lambdified from theory; φ' takes Heaviside(0) = 1/2)."""
    phi = sp.lambdify(x, act.phi, modules=["scipy", "numpy"])
    dphi = sp.lambdify(x, act.dphi.replace(sp.Heaviside, lambda a, *rest: sp.Heaviside(a, sp.S.Half)),
                       modules=["scipy", "numpy"])
    return phi, dphi


def kinks(act) -> tuple:
    return tuple(float(p) for p in act.kinks)


@lru_cache(maxsize=None)
def quadrature_function(act, kind: str) -> Callable:
    """Quadrature for one expectation kind of ``act`` (scalar arguments; ``error=True`` adds an estimate).

    On the diagonal (q₁ = q₂ = k: identical inputs) the kernels are the 1-D expectations exactly.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not an expectation kind; allowed: {', '.join(KINDS)}")
    phi, dphi = activation_functions(act)
    kk = kinks(act)
    one_d = {"mean": phi, "square": lambda u: phi(u) ** 2, "dsquare": lambda u: dphi(u) ** 2,
             "xmean": lambda u: u * phi(u)}
    if kind in one_d:
        f = one_d[kind]
        return lru_cache(maxsize=256)(lambda q, error=False: expect1(f, q, error=error, kinks=kk))
    g = phi if kind == "kernel" else dphi
    diagonal = quadrature_function(act, "square" if kind == "kernel" else "dsquare")

    def kernel(q1, q2, k, error=False):
        if q1 == q2 == k:
            return diagonal(q1, error=error)
        return expect2(g, g, q1, q2, k, error=error, kinks_f=kk, kinks_g=kk)
    return lru_cache(maxsize=256)(kernel)


@lru_cache(maxsize=None)
def closed_form_function(act, kind: str):
    """The lambdified closed form of one expectation kind, or None where theory has none."""
    args = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
    expr = _closed_form(act, kind)
    if expr.has(GaussianExpectation):
        return None
    return sp.lambdify(args, for_numerics(expr), modules=[NUMERIC_FUNCTIONS, "scipy", "numpy"])


def _closed_form(act, kind):
    args = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
    return getattr(act, METHOD[kind])(*args)


def expectation(activation, kind: str, *args, error: bool = False):
    """E of one kind (see ``sigprop.theory.expectations.KINDS``) for ``activation`` at (q) or (q₁, q₂, k).

    Closed forms are evaluated in float64 (error estimate 0: rounding only); the others by quadrature.
    """
    from ..theory import get_activation
    act = get_activation(activation)
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not an expectation kind; allowed: {', '.join(KINDS)}")
    if len(args) != ARITY[kind]:
        names = "q" if ARITY[kind] == 1 else "q1, q2, k"
        raise ValueError(f"{kind} takes {ARITY[kind]} argument(s) ({names}), got {len(args)}")
    args = _checked(kind, args)
    closed = closed_form_function(act, kind)
    if closed is None:
        return quadrature_function(act, kind)(*args, error=error)
    with np.errstate(all="ignore"):
        value = float(closed(*args))
    if not np.isfinite(value):
        value = _high_precision(act, kind, args)
    return (value, 0.0) if error else value


def _high_precision(act, kind, args) -> float:
    """A closed form whose float64 evaluation overflowed in an intermediate (e^(−q) cosh q at q = 10⁶), evaluated
    in mpmath at 30 digits; a value beyond float64 itself raises OutOfRangeError."""
    import mpmath as mp

    from .iterate import OutOfRangeError
    names = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
    expr = _closed_form(act, kind).replace(theory_determinant, lambda a, b, c: a * b - c**2)
    value = mp.mpf(sp.N(expr.subs({n: sp.Float(v, 40) for n, v in zip(names, args)}), 30))
    if not mp.isfinite(value) or abs(value) > np.finfo(float).max:
        raise OutOfRangeError(f"E[{kind}] of {act.describe()} at {', '.join(f'{a!r}' for a in args)} is "
                              f"{mp.nstr(value, 6)}: beyond float64")
    return float(value)


def _checked(kind, args) -> tuple:
    names = ("q",) if ARITY[kind] == 1 else ("q1", "q2", "k")
    values = []
    for name, v in zip(names, args):
        v = float(v)
        if not np.isfinite(v) or (name != "k" and v < 0):
            raise ValueError(f"{name}={v!r} is not allowed: it must be finite" + ("" if name == "k" else " and >= 0"))
        values.append(v)
    if len(values) == 3 and values[2] ** 2 > values[0] * values[1] * (1 + 2e-9):
        raise ValueError(f"k={values[2]!r} is not allowed: |k| must be <= sqrt(q1*q2) = "
                         f"{(values[0] * values[1]) ** 0.5!r}")
    return tuple(values)
