"""numerics.quadrature: E[f(u)] and E[f(u) g(v)] checked against references that share no code with it.

References (each independent of the composite Gauss–Legendre rules under test):

- 1-D: ``mpmath.quad`` (tanh-sinh, 20 digits) of E[f(√q z)], split at the points where √q z hits the
  activation's kink or steep region (√q z ∈ {0, ±1, ±4}) and at z = ±9.
- 2-D with g ∈ {step, relu, erf}: the conditional decomposition v = a z + b w (a = c√q₂, b = √(q₂(1−c²)),
  z ⊥ w standard normal) with the inner expectation in a standard Gaussian identity,
  E[1{μ + b w > 0}] = Φ(μ/b), E[relu(μ + b w)] = μΦ(μ/b) + bφ(μ/b), E[erf(μ + b w)] = erf(μ/√(1 + 2b²)),
  and the outer 1-D integral by ``mpmath.quad``, split where √q₁ z hits f's kink or steep region and
  where the inner function turns (a z = ±{1, 4, 8}·b and ±{1, 4, 8}·√(1 + 2b²)). f ranges over all five
  functions (tanh, tanh', relu, step, erf). At c = ±1 (b = 0) it is the 1-D integral of f(√q₁ z) g(a z).
- 2-D with g ∈ {tanh, tanh'}: nested adaptive QUADPACK (``scipy.integrate.quad``, epsabs 1e-15) over the
  same decomposition, split at the steep points of both factors. (A nested ``mpmath.quad`` agrees to 1e-16
  but costs 30 s per value; this one costs 0.05 s.)
- The closed forms of ``theory.activations`` (arc-cosine and Williams kernels, and their Price-theorem
  derivatives), lambdified to mpmath; a Monte Carlo estimate; Gaussian moments (Isserlis).

Tolerances. The rule under test reaches ~1e-12 relative accuracy or better on all cases here (worst
observed: 8e-13 for E[tanh'(u) tanh'(v)] at q₁ = q₂ = 1000, c = 0.999999; typically 1e-16 to 1e-14); the
references are good to < 1e-14 (mpmath at 20 digits, QUADPACK at epsabs 1e-15). So we require |I − ref| ≤ RTOL·|ref| + ATOL·S with RTOL = 1e-10 (the
accuracy the module promises for mean-field use, 100× above what it reaches) and ATOL = 1e-12, where
S = √(E[f(u)²] E[g(v)²]) ≥ |E[f(u)g(v)]| (Cauchy–Schwarz) is the natural scale of a value that cancels
to ~0 (E[tanh(u)] = 0, c = 0, c = −1 for relu).
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from scipy import integrate, special

from sigprop.numerics.quadrature import expect1, expect2
from sigprop.theory import erf, relu
from sigprop.theory.symbols import k as K_SYM, q as Q_SYM, q1 as Q1_SYM, q2 as Q2_SYM

mp.mp.dps = 20
RTOL = 1e-10
ATOL = 1e-12

# -- the functions, written here from their definitions (numpy for the code under test, mpmath for the
#    references). tanh' = 1 − tanh² = sech²; step = Heaviside 1{x > 0}.
NP = {
    "tanh": np.tanh,
    "dtanh": lambda u: 1.0 - np.tanh(u) ** 2,
    "relu": lambda u: np.maximum(u, 0.0),
    "step": lambda u: (np.asarray(u) > 0).astype(float),
    "erf": special.erf,
}
MP = {
    "tanh": mp.tanh,
    "dtanh": lambda x: mp.sech(x) ** 2,
    "relu": lambda x: x if x > 0 else mp.mpf(0),
    "step": lambda x: mp.mpf(1) if x > 0 else mp.mpf(0),
    "erf": mp.erf,
}
FLOAT = {"tanh": math.tanh,
         "dtanh": lambda x: 4 * math.exp(-2 * abs(x)) / (1 + math.exp(-2 * abs(x))) ** 2}   # sech², no overflow
# where each function has a kink, a jump, or its steep part (in the activation's own argument)
BREAKS = {"tanh": (-4, -1, 0, 1, 4), "dtanh": (-4, -1, 0, 1, 4), "erf": (-4, -1, 0, 1, 4),
          "relu": (0,), "step": (0,)}
# E_w[g(μ + b w)], w ~ N(0, 1), b > 0: textbook Gaussian identities (not the bivariate closed forms)
INNER = {
    "step": lambda mu, b: mp.ncdf(mu / b),
    "relu": lambda mu, b: mu * mp.ncdf(mu / b) + b * mp.npdf(mu / b),
    "erf": lambda mu, b: mp.erf(mu / mp.sqrt(1 + 2 * b * b)),
}
Z_TAIL = 9  # split also at z = ±9; the adaptive rule handles the tails beyond


def _z_breaks(scaled_names, extra=()):
    """Sorted split points in z: z·scale hits a break of the named function, plus ``extra`` and 0, ±9."""
    pts = {mp.mpf(0), mp.mpf(-Z_TAIL), mp.mpf(Z_TAIL)}
    for name, scale in scaled_names:
        if scale != 0:
            pts |= {mp.mpf(t) / scale for t in BREAKS[name]}
    pts |= set(extra)
    return [-mp.inf] + sorted(p for p in pts if abs(p) <= Z_TAIL) + [mp.inf]


def ref1(name, q, power=1):
    """E[f(√q z)^power] by mpmath.quad."""
    f, s = MP[name], mp.sqrt(mp.mpf(q))
    return mp.quad(lambda z: f(s * z) ** power * mp.npdf(z), _z_breaks([(name, s)]))


def ref2(fn, gn, q1, q2, c):
    """E[f(u) g(v)], corr(u, v) = c, by the conditional decomposition (see the module docstring)."""
    q1, q2, c = mp.mpf(q1), mp.mpf(q2), mp.mpf(c)
    s1 = mp.sqrt(q1)
    a, b = c * mp.sqrt(q2), mp.sqrt(q2) * mp.sqrt(1 - c * c)
    f = MP[fn]
    if b == 0:
        g = MP[gn]
        return mp.quad(lambda z: f(s1 * z) * g(a * z) * mp.npdf(z), _z_breaks([(fn, s1), (gn, a)]))
    inner = INNER[gn]
    turns = [t * w / a for w in (b, mp.sqrt(1 + 2 * b * b)) for t in (-8, -4, -1, 1, 4, 8)] if a != 0 else []
    return mp.quad(lambda z: f(s1 * z) * inner(a * z, b) * mp.npdf(z), _z_breaks([(fn, s1)], turns))


def ref2_quadpack(fn, gn, q1, q2, c):
    """E[f(u) g(v)] for smooth steep f, g (tanh, tanh') by nested scipy.integrate.quad."""
    f, g = FLOAT[fn], FLOAT[gn]
    s1, a, b = math.sqrt(q1), c * math.sqrt(q2), math.sqrt(q2 * (1 - c * c))
    kw = dict(epsabs=1e-15, epsrel=1e-13, limit=200)
    dens = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def pieces(fun, points, lim=12.0):
        pts = sorted({p for p in points if abs(p) < lim})
        edges = [-lim, *pts, lim]
        return sum(integrate.quad(fun, lo, hi, **kw)[0] for lo, hi in zip(edges[:-1], edges[1:]))

    if b == 0:
        return pieces(lambda z: f(s1 * z) * g(a * z) * dens(z), [t / s for t in (-4, -1, 0, 1, 4) for s in (s1, abs(a))])

    def inner(z):
        w0 = -a * z / b
        return pieces(lambda w: g(a * z + b * w) * dens(w), [w0 + t / b for t in (-4, -1, 0, 1, 4)])

    turns = [t * max(b, 1.0) / a for t in (-4, -1, 1, 4)] if a != 0 else []
    return pieces(lambda z: f(s1 * z) * inner(z) * dens(z), [t / s1 for t in (-4, -1, 0, 1, 4)] + turns)


def _scale(fn, gn, q1, q2):
    """S = √(E[f(u)²] E[g(v)²]): only the scale of the absolute tolerance (1-D values are checked above)."""
    return math.sqrt(expect1(lambda u: NP[fn](u) ** 2, q1) * expect1(lambda u: NP[gn](u) ** 2, q2))


def _assert_close(val, ref, scale, what):
    ref = float(ref)
    tol = RTOL * abs(ref) + ATOL * scale
    assert abs(val - ref) <= tol, f"{what}: got {val!r}, reference {ref!r}, |diff| {abs(val - ref):.3e} > {tol:.3e}"


# -- 1-D -----------------------------------------------------------------------------------------------
QS = [1e-3, 1.0, 10.0, 1e3]


@pytest.mark.parametrize("q", QS)
@pytest.mark.parametrize("name", list(NP))
def test_expect1_matches_mpmath(name, q):
    f = NP[name]
    scale = float(mp.sqrt(ref1(name, q, 2)))
    for power in (1, 2):   # E[f] (0 for the odd ones: checked against the scale) and E[f²] (the length map)
        ref = ref1(name, q, power)
        val, est = expect1(lambda u: f(u) ** power, q, error=True)
        _assert_close(val, ref, scale ** power, f"E[{name}^{power}] at q={q}")
        # the error estimate |I_m − I_{m+4}| is small, and the true error is within 100× of it (or of the
        # rounding floor ATOL·S, since both rules can agree to the last bit while rounding differs)
        assert est <= 1e-11 * scale ** power
        assert abs(val - float(ref)) <= max(100 * est, ATOL * scale ** power)


# -- 2-D -----------------------------------------------------------------------------------------------
# (q1, q2, c): equal and unequal variances over six decades, c = ±1 exactly, c = ±0.999999, c = 0.
PAIRS = [(1.0, 1.0, 0.5), (1.0, 1.0, 1.0), (1.0, 1.0, -1.0), (1.0, 1.0, 0.999999), (1.0, 1.0, 0.0),
         (0.3, 10.0, 0.3), (1e3, 1.0, -0.7), (1e3, 1e3, 0.999999), (1e-3, 1e3, 0.9), (10.0, 1e-3, -0.999999),
         (1e3, 1e-3, 0.2)]


def _check_pair(fn, gn, q1, q2, c, ref):
    k = c * math.sqrt(q1 * q2)
    val, est = expect2(NP[fn], NP[gn], q1, q2, k, error=True)
    scale = _scale(fn, gn, q1, q2)
    what = f"E[{fn}(u) {gn}(v)] at q1={q1}, q2={q2}, c={c}"
    _assert_close(val, ref, scale, what)
    assert est <= 1e-11 * scale, f"{what}: error estimate {est:.2e}"
    assert abs(val - float(ref)) <= max(100 * est, ATOL * scale), f"{what}: error above 100× its estimate {est:.2e}"


@pytest.mark.parametrize("q1,q2,c", PAIRS)
@pytest.mark.parametrize("gn", list(INNER))
@pytest.mark.parametrize("fn", list(NP))
def test_expect2_matches_mpmath(fn, gn, q1, q2, c):
    _check_pair(fn, gn, q1, q2, c, ref2(fn, gn, q1, q2, c))


@pytest.mark.parametrize("q1,q2,c", PAIRS)
@pytest.mark.parametrize("fn,gn", [("tanh", "tanh"), ("dtanh", "dtanh"), ("tanh", "dtanh")])
def test_expect2_smooth_pairs_match_quadpack(fn, gn, q1, q2, c):
    _check_pair(fn, gn, q1, q2, c, ref2_quadpack(fn, gn, q1, q2, c))


def test_references_agree_with_each_other():
    """The two reference routes agree where both apply (so neither hides a mistake of the other)."""
    for q1, q2, c in [(1.0, 1.0, 0.5), (1e3, 1.0, -0.7), (0.3, 10.0, 0.999999)]:
        a = ref2_quadpack("tanh", "dtanh", q1, q2, c)
        b = ref2_quadpack("dtanh", "tanh", q2, q1, c)          # swap roles: E[f(u)g(v)] = E[g(v)f(u)]
        assert abs(a - b) <= 1e-13, (q1, q2, c, a, b)
    # the mpmath route reproduces the nested-mpmath value E[tanh(u) tanh(v)] = 0.186324413203448... at
    # q1 = q2 = 1, c = 1/2 (computed once with mpmath.quad in 2-D, 20 digits, 30 s); QUADPACK too.
    assert abs(ref2_quadpack("tanh", "tanh", 1.0, 1.0, 0.5) - 0.18632441320344809) <= 1e-15


# -- closed forms from theory ---------------------------------------------------------------------------
def _mp_closed(expr, args):
    fn = sp.lambdify(args, expr, modules="mpmath")
    return lambda *vals: mp.re(fn(*[mp.mpf(v) for v in vals]))


CLOSED_PAIRS = [(1.0, 1.0, 0.3), (2.0, 0.5, -1.0), (0.7, 0.7, 1.0), (1e-3, 1e3, 0.999999), (1e3, 30.0, -0.8),
                (5.0, 5.0, 0.0)]


@pytest.mark.parametrize("kind", ["relu.kernel", "relu.dkernel", "erf.kernel", "erf.dkernel"])
def test_expect2_matches_theory_closed_forms(kind):
    """Arc-cosine (Cho & Saul) and Williams kernels, and their Price derivatives (SymPy ∂/∂k), from theory."""
    act_name, method = kind.split(".")
    act = {"relu": relu, "erf": erf}[act_name]
    closed = _mp_closed(getattr(act, method)(Q1_SYM, Q2_SYM, K_SYM), (Q1_SYM, Q2_SYM, K_SYM))
    # φ for "kernel", φ' for "dkernel": relu' = step, erf' = 2/√π e^{-x²}
    f = {("relu", "kernel"): NP["relu"], ("relu", "dkernel"): NP["step"], ("erf", "kernel"): NP["erf"],
         ("erf", "dkernel"): lambda u: 2 / math.sqrt(math.pi) * np.exp(-u * u)}[(act_name, method)]
    with mp.workdps(40):   # the closed forms cancel ~10 digits near c = ±1; 40 digits keep them exact
        for q1, q2, c in CLOSED_PAIRS:
            k = mp.mpf(c) * mp.sqrt(mp.mpf(q1) * mp.mpf(q2))
            ref = closed(q1, q2, k)
            val = expect2(f, f, q1, q2, float(k))
            scale = math.sqrt(expect1(lambda u: f(u) ** 2, q1) * expect1(lambda u: f(u) ** 2, q2))
            _assert_close(val, ref, scale, f"{kind} at q1={q1}, q2={q2}, c={c}")


@pytest.mark.parametrize("q", QS)
def test_expect1_matches_theory_closed_forms(q):
    for act, name in ((relu, "relu"), (erf, "erf")):
        for method, f in (("mean", NP[name]), ("second_moment", lambda u, g=NP[name]: g(u) ** 2)):
            expr = getattr(act, method)(Q_SYM)
            ref = float(sp.N(expr.subs(Q_SYM, sp.Float(q, 30)), 25))
            _assert_close(expect1(f, q), ref, float(mp.sqrt(ref1(name, q, 2))) ** (1 if method == "mean" else 2),
                          f"{name}.{method} at q={q}")


# -- Price's theorem on tanh (no closed form): ∫₀^{k₁} E[φ'(u)φ'(v)] dk = E[φ(u)φ(v)](k₁) − E[φ(u)φ(v)](0) ----
@pytest.mark.parametrize("q1,q2,c1", [(1.0, 1.0, 0.9), (0.4, 6.0, -0.999), (50.0, 2.0, 1.0)])
def test_price_theorem_tanh(q1, q2, c1):
    k1 = c1 * math.sqrt(q1 * q2)
    lhs, qerr = integrate.quad(lambda k: expect2(NP["dtanh"], NP["dtanh"], q1, q2, k), 0.0, k1,
                               epsabs=1e-13, epsrel=1e-12)
    rhs = expect2(np.tanh, np.tanh, q1, q2, k1) - expect2(np.tanh, np.tanh, q1, q2, 0.0)
    # quad's estimate + the rule's ~1e-12·S error on each side (S ≤ 1 for tanh)
    assert abs(lhs - rhs) <= 10 * qerr + 1e-11, (lhs, rhs, qerr)


# -- Monte Carlo ----------------------------------------------------------------------------------------
def test_expect2_tanh_monte_carlo():
    q1, q2, c = 1.5, 0.7, 0.6
    k = c * math.sqrt(q1 * q2)
    rng = np.random.default_rng(20240611)
    n = 2_000_000
    z, w = rng.standard_normal(n), rng.standard_normal(n)
    u = math.sqrt(q1) * z
    v = math.sqrt(q2) * (c * z + math.sqrt(1 - c * c) * w)
    samples = np.tanh(u) * np.tanh(v)
    se = samples.std(ddof=1) / math.sqrt(n)
    val = expect2(np.tanh, np.tanh, q1, q2, k)
    # 5 standard errors: a false alarm has probability 6e-7; the seed is fixed, so the test is deterministic
    assert abs(samples.mean() - val) <= 5 * se, (samples.mean(), val, se)


# -- polynomials: Gaussian moments (Isserlis) ----------------------------------------------------------
POLY_RTOL = 1e-12   # polynomials are smooth: the rule is exact up to rounding and the e^-50 truncated tail


@pytest.mark.parametrize("q", QS)
def test_expect1_moments(q):
    assert expect1(lambda u: u**2, q) == pytest.approx(q, rel=POLY_RTOL)
    assert expect1(lambda u: u**4, q) == pytest.approx(3 * q * q, rel=POLY_RTOL)
    assert abs(expect1(lambda u: u**3, q)) <= POLY_RTOL * q**1.5


@pytest.mark.parametrize("q1,q2,c", PAIRS)
def test_expect2_moments(q1, q2, c):
    k = c * math.sqrt(q1 * q2)
    s = math.sqrt(q1 * q2)
    ident = lambda u: u  # noqa: E731
    assert abs(expect2(ident, ident, q1, q2, k) - k) <= POLY_RTOL * s
    assert expect2(lambda u: u**2, lambda v: v**2, q1, q2, k) == pytest.approx(q1 * q2 + 2 * k * k, rel=POLY_RTOL)
    assert abs(expect2(lambda u: u**3, ident, q1, q2, k) - 3 * q1 * k) <= POLY_RTOL * 3 * q1 * s


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("q", [-1.0, -1e-300, float("nan"), float("inf")])
def test_expect1_rejects_bad_q(q):
    with pytest.raises(ValueError, match=r"\bq="):
        expect1(np.tanh, q)


@pytest.mark.parametrize("q1,q2,k,name", [(-1.0, 1.0, 0.0, "q1"), (1.0, float("nan"), 0.0, "q2"),
                                          (1.0, 1.0, float("nan"), "k"), (1.0, 4.0, 2.01, "k"),
                                          (1.0, 4.0, -2.01, "k"), (1e3, 1e-3, 1.1, "k")])
def test_expect2_rejects_bad_input(q1, q2, k, name):
    with pytest.raises(ValueError, match=rf"\b{name}="):
        expect2(np.tanh, np.tanh, q1, q2, k)


def test_expect2_rejects_covariance_with_zero_variance():
    with pytest.raises(ValueError, match=r"\bk="):
        expect2(np.tanh, np.tanh, 0.0, 1.0, 0.5)


def test_zero_variance_returns_f0():
    assert expect1(np.cos, 0.0) == 1.0
    assert expect1(np.cos, 0.0, error=True) == (1.0, 0.0)
    # (u, v) with q1 = 0: u = 0 a.s., so E[cos(u) cos(v)] = E[cos(v)] = e^{-q2/2}
    assert expect2(np.cos, np.cos, 0.0, 2.0, 0.0) == pytest.approx(math.exp(-1.0), rel=1e-13)
    assert expect2(lambda u: u + 3.0, np.cos, 2.0, 0.0, 0.0) == pytest.approx(3.0, rel=1e-13)


def test_zero_variance_scalar_function():
    assert expect1(lambda u: 2.0, 1.0) == pytest.approx(2.0, rel=1e-14)   # works for q > 0
    assert expect1(lambda u: 2.0, 0.0) == 2.0


def test_kinks_of_both_factors_a_hair_apart_are_resolved_on_both_sides():
    """hard_tanh's dkernel P(|u| < 1, |v| < 1) at c = 1 − ε, q₁ = q₂: f's kink at z = 1/√q and g's at 1/(c√q) lie
    ε apart, and the gap P(|u| < 1) − P(|u|, |v| < 1) ~ √ε must not vanish into the coarser feature's panels."""
    g = lambda u: (np.abs(u) < 1).astype(float)          # noqa: E731
    for eps in (1e-9, 1e-12):
        c = 1 - eps
        value, err = expect2(g, g, 2.0, 2.0, 2.0 * c, error=True, kinks_f=(-1.0, 1.0), kinks_g=(-1.0, 1.0))
        # reference: the conditional decomposition with the step identity twice, 1{|v| < 1} = step(v + 1) −
        # step(v − 1); the outer integral over |√2 z| < 1, split where the inner function turns (a z = ±1 within
        # a few b)
        with mp.workdps(30):
            s1, a, b = mp.sqrt(2), mp.sqrt(2) * mp.mpf(c), mp.sqrt(2) * mp.sqrt(1 - mp.mpf(c) ** 2)
            inner = lambda z: INNER["step"](a * z + 1, b) - INNER["step"](a * z - 1, b)      # noqa: E731
            turns = {sign * (1 + t * b) / a for sign in (-1, 1) for t in (-8, -4, -1, 0, 1, 4, 8)}
            ref = mp.quad(lambda z: inner(z) * mp.npdf(z),
                          sorted({-1 / s1, 1 / s1, *(z for z in turns if abs(z) < 1 / s1)}))
        assert abs(value - float(ref)) <= 1e-12 and abs(value - float(ref)) <= err + 1e-15
