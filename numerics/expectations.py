"""Numbers for an activation's Gaussian expectations: closed forms where theory has them, quadrature otherwise.

:func:`quadrature_function` integrates φ, φ' and φ'' that theory defines (lambdified once), with panel edges at
the activation's kinks; it is what an unevaluated expectation in a compiled map is bound to. φ'' is the
almost-everywhere part s plus Dirac deltas where φ' jumps (``Activation.dphi_jumps``), so E[φ(u)φ''(u)] is the
quadrature of φ s plus J φ(t) at the density of u, and E[φ''(u)φ''(v)] the quadrature of s(u)s(v) plus, per
kink, the density times a conditional expectation E[s(v) | u = t] and, per pair of kinks, the bivariate
density. :func:`expectation` evaluates one expectation of any activation by whichever route theory offers, and
is the single numeric entry point users and the conformance tests call.

Example
-------
>>> from sigprop.theory import relu, tanh
>>> from sigprop.numerics import expectation
>>> expectation(relu, "square", 2.0)
1.0
>>> round(expectation(tanh, "kernel", 1.0, 1.0, 0.5), 12)
0.186324413203
>>> round(expectation("hard_tanh", "ddkernel", 1.0, 2.0, 0.5), 12)     # φ'' = δ(x + 1) − δ(x − 1)
0.059147094324
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np
import sympy as sp

from ..theory.determinant import covariance_determinant as theory_determinant
from ..theory.expectations import ARITY, KINDS, METHOD, GaussianExpectation
from ..theory.gaussian import bivariate_normal_density, normal_density
from ..theory.symbols import k as K, q as Q, q1 as Q1, q2 as Q2, x
from .determinant import covariance_determinant
from .quadrature import expect1, expect2, expect_given
from .stable import split_hyperbolic, stable_form

#: functions the lambdified closed forms call, beyond numpy: the exact determinant, and a square root that
#: reads a determinant rounded a hair below 0 as 0 (at |c| = 1)
NUMERIC_FUNCTIONS = {"exact_covariance_determinant": covariance_determinant,
                     "sqrt": lambda v: np.sqrt(np.maximum(v, 0.0))}


#: functions numpy evaluates itself (SymPy's NumPy printer knows them); anything else makes lambdify use SciPy
_NUMPY_FUNCTIONS = frozenset({"acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cos", "cosh", "exp",
                              "expm1", "log", "log1p", "sign", "sin", "sinh", "tan", "tanh", "Abs", "Max", "Min",
                              "Heaviside", "Piecewise", "floor", "ceiling"})


def modules(exprs, *bound) -> list:
    """lambdify's ``modules`` for ``exprs``: the ``bound`` name → function dicts, then SciPy only where an
    expression calls a function numpy lacks (erf, gamma, …): importing scipy.special costs 0.2 s at a cold start.
    NumPy is given as the module, not by name: by name, SymPy star-imports it, which loads NumPy's lazy submodules
    (0.1 s at a cold start); the generated code and its values are the same."""
    names = set().union(*(b.keys() for b in bound)) | _NUMPY_FUNCTIONS
    calls = {type(f).__name__ for e in exprs for f in sp.sympify(e).atoms(sp.Function)}
    return [*bound, *(["scipy"] if calls - names else []), np]


class exact_covariance_determinant(sp.Function):  # noqa: N801 - the name lambdify prints and binds
    """Stands for theory's covariance determinant in compiled code, bound to the exact-product evaluation."""

    nargs = 3


def for_numerics(expr):
    """``expr`` ready to lambdify: the covariance determinant replaced by its exact evaluation, products of
    exponentials and sinh or cosh (sin's and cos's kernels) written as sums of exponentials that do not overflow."""
    return split_hyperbolic(sp.sympify(expr).replace(theory_determinant, exact_covariance_determinant))


@lru_cache(maxsize=None)
def activation_functions(act) -> tuple[Callable, Callable]:
    """Vectorized φ and φ' of an activation (lambdified from theory in a form without cancellation,
    :func:`~sigprop.numerics.stable.stable_form`, each repeated subexpression computed once; φ' takes
    Heaviside(0) = 1/2)."""
    phi = sp.lambdify(x, stable_form(act.phi), modules=["scipy", np], cse=True)
    dphi = sp.lambdify(x, stable_form(act.dphi.replace(sp.Heaviside, lambda a, *rest: sp.Heaviside(a, sp.S.Half))),
                       modules=["scipy", np], cse=True)
    return phi, dphi


@lru_cache(maxsize=None)
def second_derivative_functions(act) -> tuple[Callable, tuple]:
    """φ'' of a continuous activation: its vectorized almost-everywhere part s, and the jumps ((t, J), …) of φ'
    as floats (the Dirac deltas). Raises theory's ``UndefinedExpectation`` (a ValueError) where φ jumps."""
    act.ddphi                                    # φ'' of a φ that jumps is not a measure: theory says why
    s = sp.lambdify(x, stable_form(act.ddphi_smooth.replace(sp.Heaviside,
                                                            lambda a, *rest: sp.Heaviside(a, sp.S.Half))),
                    modules=["scipy", np], cse=True)
    return s, tuple((float(t), float(j)) for t, j in act.dphi_jumps)


@lru_cache(maxsize=None)
def densities() -> tuple[Callable, Callable]:
    """theory's Gaussian densities as vectorized functions: N(t; 0, q) and p(t₁, t₂) of N(0, [[q₁, k], [k, q₂]])
    (what the Dirac deltas of φ″ pick out)."""
    t1, t2 = sp.symbols("t1 t2", real=True)
    one = sp.lambdify((t1, Q), normal_density(t1, Q), modules=np)
    two = sp.lambdify((t1, t2, Q1, Q2, K), for_numerics(bivariate_normal_density(t1, t2, Q1, Q2, K)),
                      modules=[NUMERIC_FUNCTIONS, np])
    return one, two


def kinks(act) -> tuple:
    return tuple(float(p) for p in act.kinks)


def _at(f, t: float) -> float:
    return float(np.ravel(f(np.full(1, t)))[0])


def _total(parts, error):
    """Sum (value, error estimate) pairs; the value alone unless ``error``."""
    value, err = sum(p[0] for p in parts), sum(p[1] for p in parts)
    return (value, err) if error else value


def _pair(result, error):
    return result if error else (result, 0.0)


@lru_cache(maxsize=None)
def quadrature_function(act, kind: str) -> Callable:
    """Quadrature for one expectation kind of ``act`` (scalar arguments; ``error=True`` adds an estimate).

    On the diagonal (q₁ = q₂ = k: identical inputs) the kernels are the 1-D expectations exactly.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not an expectation kind; allowed: {', '.join(KINDS)}")
    phi, dphi = activation_functions(act)
    kk = kinks(act)
    if kind in ("curvature", "ddkernel"):
        return (_curvature if kind == "curvature" else _ddkernel)(act, phi, *second_derivative_functions(act), kk)
    one_d = {"mean": phi, "square": lambda u: phi(u) ** 2, "dsquare": lambda u: dphi(u) ** 2,
             "xmean": lambda u: u * phi(u), "dquartic": lambda u: dphi(u) ** 4}
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


def _curvature(act, phi, s, jumps, kk):
    """E[φ(u)φ''(u)] = E[φ(u)s(u)] + Σ J φ(t) N(t; 0, q)."""
    def f(u):
        return phi(u) * s(u)

    def curvature(q, error=False):
        if q == 0.0:
            if any(t == 0.0 and j * _at(phi, 0.0) != 0.0 for t, j in jumps):
                from .iterate import OutOfRangeError
                raise OutOfRangeError(f"E[curvature] of {act.describe()} at 0.0 is infinite: phi' jumps at 0, where "
                                      "phi is not 0")
            # the limit q → 0: φ(0) times the mean of s's one-sided values at 0
            value = (_at(f, 1e-300) + _at(f, -1e-300)) / 2
            return (value, 0.0) if error else value
        normal_pdf = densities()[0]
        deltas = sum(j * _at(phi, t) * normal_pdf(t, q) for t, j in jumps)
        return _total([_pair(expect1(f, q, error=error, kinks=kk), error), (deltas, 0.0)], error)
    return lru_cache(maxsize=256)(curvature)


def _ddkernel(act, phi, s, jumps, kk):
    """E[φ''(u)φ''(v)] = E[s(u)s(v)] + Σ_t J_t (N(t; 0, q₁) E[s(v) | u = t] + N(t; 0, q₂) E[s(u) | v = t])
    + Σ_{t,t'} J_t J_t' p(t, t')."""
    smooth = act.ddphi_smooth != 0

    def ddkernel(q1, q2, k, error=False):
        if jumps and covariance_determinant(q1, q2, k) <= 0.0:
            from .iterate import OutOfRangeError
            raise OutOfRangeError(f"E[ddkernel] of {act.describe()} at {q1!r}, {q2!r}, {k!r} is undefined: phi'' has "
                                  f"Dirac deltas (phi' jumps at {', '.join(repr(t) for t, _ in jumps)}) and the "
                                  "pair's covariance is singular (|c| = 1 or a zero variance: no density there)")
        normal_pdf, bivariate_normal_pdf = densities()
        parts = [(sum(j1 * j2 * bivariate_normal_pdf(t1, t2, q1, q2, k) for t1, j1 in jumps for t2, j2 in jumps),
                  0.0)]
        if smooth:
            if q1 == q2 == k:
                parts.append(_pair(expect1(lambda u: s(u) ** 2, q1, error=error, kinks=kk), error))
            else:
                parts.append(_pair(expect2(s, s, q1, q2, k, error=error, kinks_f=kk, kinks_g=kk), error))
            for t, j in jumps:
                for qa, qb in ((q1, q2), (q2, q1)):
                    val, err = _pair(expect_given(s, qa, qb, k, t, error=error, kinks=kk), error)
                    parts.append((j * normal_pdf(t, qa) * val, abs(j) * normal_pdf(t, qa) * err))
        return _total(parts, error)
    return lru_cache(maxsize=256)(ddkernel)


@lru_cache(maxsize=None)
def closed_form_function(act, kind: str):
    """The lambdified closed form of one expectation kind, or None where theory has none."""
    args = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
    expr = _closed_form(act, kind)
    if expr.has(GaussianExpectation):
        return None
    expr = for_numerics(expr)
    return sp.lambdify(args, expr, modules=modules([expr], NUMERIC_FUNCTIONS))


@lru_cache(maxsize=None)
def _sums_function(act, kind: str):
    """The terms of every sum in the closed form, lambdified together, and for each whether it is an exponent
    (None where the form has no sum): their cancellation is what rounding turns into relative error."""
    args = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
    expr = for_numerics(_closed_form(act, kind))
    adds = [node for node in sp.preorder_traversal(expr) if isinstance(node, sp.Add)]
    if not adds:
        return None
    exponents = {e.args[0] for e in expr.atoms(sp.exp)}
    fn = sp.lambdify(args, [list(a.args) for a in adds], modules=modules(adds, NUMERIC_FUNCTIONS))
    return fn, [a in exponents for a in adds]


def condition(act, kind, args) -> np.ndarray:
    """Σ over the closed form's sums of Σ|terms| / |Σ terms|, per entry of the broadcast ``args``: relative
    rounding error ≈ this times 2⁻⁵³ (to first order; inf where a sum cancels to exactly 0). A sum that is an
    exponent counts Σ|terms| instead: its absolute rounding is the relative error of e^sum, however much it
    cancels (e^(|k| − (q₁+q₂)/2) at c = 1 is exact)."""
    shape = np.broadcast(*args).shape
    total = np.zeros(shape)
    sums = _sums_function(act, kind)
    if sums is None:
        return total
    fn, exponents = sums
    for terms, exponent in zip(fn(*args), exponents):
        terms = np.stack([np.broadcast_to(np.asarray(t, dtype=float), shape) for t in terms])
        size, value = np.sum(np.abs(terms), axis=0), np.abs(np.sum(terms, axis=0))
        if exponent:
            total += size
        else:
            total += np.where(size > 0, np.divide(size, value, out=np.full_like(size, np.inf), where=value > 0), 0.0)
    return total


def _closed_form(act, kind):
    args = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
    return getattr(act, METHOD[kind])(*args)


def check_call(kind: str, args) -> None:
    """Raise a ValueError unless ``kind`` is an expectation kind and ``args`` holds its arguments ((q) or
    (q₁, q₂, k))."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not an expectation kind; allowed: {', '.join(KINDS)}")
    if len(args) != ARITY[kind]:
        names = "q" if ARITY[kind] == 1 else "q1, q2, k"
        raise ValueError(f"{kind} takes {ARITY[kind]} argument(s) ({names}), got {len(args)}")


def expectation(activation, kind: str, *args, error: bool = False):
    """E of one kind (see ``sigprop.theory.expectations.KINDS``) for ``activation`` at (q) or (q₁, q₂, k).

    Closed forms are evaluated in float64 where that is accurate: the cancellation in their sums bounds the
    rounding (the error estimate is that bound), and where it would exceed 1e-13 relative (E[sin⁴u] = 3/8 − e^(−2q)/2
    + e^(−8q)/8 at small q; a difference of densities at small k) or float64 overflows in an intermediate, the
    same closed form is evaluated in mpmath with the digits the cancellation needs. The others by quadrature.
    """
    from ..theory import get_activation
    act = get_activation(activation)
    check_call(kind, args)
    args = _checked(kind, args)
    closed = closed_form_function(act, kind)
    if closed is None:
        return quadrature_function(act, kind)(*args, error=error)
    with np.errstate(all="ignore"):
        try:
            value = float(closed(*args))
            cond = float(condition(act, kind, args))
        except ZeroDivisionError:                # Python floats: a singular covariance (δ·δ of φ'' at |c| = 1)
            value, cond = np.inf, np.inf
    rounding = 4 * _EPS * (1 + cond)
    if not np.isfinite(value) or rounding > 1e-13:
        value = _high_precision(act, kind, args, 30 + (int(np.log10(max(cond, 1.0))) if cond < 1e270 else 30))
        rounding = _EPS                          # the result's own rounding to float64
    return (value, rounding * abs(value)) if error else value


_EPS = float(np.finfo(float).eps) / 2


def _high_precision(act, kind, args, digits: int = 30) -> float:
    """A closed form evaluated in mpmath at ``digits`` digits: where float64 overflows in an intermediate
    (e^(−q) cosh q at q = 10⁶) or its sums cancel; a value beyond float64 itself raises OutOfRangeError."""
    import mpmath as mp

    from .iterate import OutOfRangeError
    names = (Q,) if ARITY[kind] == 1 else (Q1, Q2, K)
    # the determinant clipped at 0 as in float64 (k² may exceed q₁q₂ by rounding, at |c| = 1)
    expr = _closed_form(act, kind).replace(theory_determinant, lambda a, b, c: sp.Max(a * b - c**2, 0))
    digits = min(digits, 300)
    exact = sp.N(expr.subs({n: sp.Float(v, digits + 10) for n, v in zip(names, args)}), digits)
    if not exact.is_finite:      # E[φ''(u)φ''(v)] of relu at |c| = 1: the density of a singular pair
        raise OutOfRangeError(f"E[{kind}] of {act.describe()} at {', '.join(f'{a!r}' for a in args)} is infinite "
                              "or undefined")
    value = mp.mpf(exact)
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
