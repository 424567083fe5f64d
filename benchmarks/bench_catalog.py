"""Per activation of the catalog: the fast path's worst error against mpmath, and its time per value.

For every registered activation and each expectation kind, sigprop's value (closed form or quadrature, as
``sigprop.numerics.expectation`` chooses) is compared with an mpmath integral of the same φ: 1-D kinds (E[φ],
E[φ²], E[φ'²], E[uφ], E[φ'⁴], and E[φφ''] through E[uφφ']/q − E[φ'²]) at 30 digits for q in
{0.01, 0.3, 1, 4, 100}; the kernels against nested adaptive QUADPACK over the conditional
decomposition v = (k/q₁)u + √(q₂ − k²/q₁)w (about 1e-13 relative, so errors below that are the reference's),
for three (q₁, q₂, c). The error printed is the worst
|value − reference| / max(|reference|, scale), scale = the Cauchy–Schwarz bound √(E[f²]E[g²]) (so an
expectation that vanishes by symmetry is judged on the scale of its integrand). Times are medians over calls at
slightly different arguments (no cache hits), after a warm-up call that compiles.

Run: python benchmarks/bench_catalog.py [--quick] [NAME ...]
"""
import argparse
import math
import statistics
import time
import warnings

import mpmath as mp
import sympy as sp
from scipy import integrate

from sigprop.numerics import OutOfRangeError, expectation
from sigprop.theory import ACTIVATIONS
from sigprop.theory.expectations import KINDS
from sigprop.theory.piecewise import piecewise_form
from sigprop.theory.symbols import x

QS = (0.01, 0.3, 1.0, 4.0, 100.0)
PAIRS = ((1.0, 1.0, 0.5), (0.5, 2.0, 0.95), (1.7, 0.4, -0.9))
#: 1-D kind -> its integrand from (u, φ(u), φ'(u)); E[φφ''] is referenced through Stein: E[uφφ']/q − E[φ'²]
ONE_D = {"mean": lambda u, f, d: f, "square": lambda u, f, d: f * f, "dsquare": lambda u, f, d: d * d,
         "xmean": lambda u, f, d: u * f, "dquartic": lambda u, f, d: d ** 4}
TWO_D = {"kernel": 0, "dkernel": 1}
LETTER = {"registered": "R", "derived": "D", "numerical": "N", "undefined": "-"}


def functions(act, module="mpmath"):
    return tuple(sp.lambdify(x, piecewise_form(e), module) for e in (act.phi, act.dphi))


def breaks(act, scale):
    return [mp.mpf(float(k)) / scale for k in act.kinks] + [mp.mpf(t) for t in (-4, -1, 0, 1, 4)]


def ref_1d(act, fd, integrand, q):
    """(E[integrand], E[|integrand|]) at 30 digits, split at the kinks."""
    s = mp.sqrt(q)
    pts = [-mp.inf] + sorted(set(breaks(act, s))) + [mp.inf]
    g = lambda z: integrand(s * z, fd[0](s * z), fd[1](s * z))      # noqa: E731
    with mp.workdps(30):
        val = mp.quad(lambda z: g(z) * mp.npdf(z), pts)
        scale = mp.quad(lambda z: abs(g(z)) * mp.npdf(z), pts)
    return val, scale


def ref_curvature(act, fd, q):
    """E[φφ''] = E[uφφ']/q − E[φ'²] (Gaussian integration by parts; φ continuous) and its scale."""
    a, sa = ref_1d(act, fd, lambda u, f, d: u * f * d, q)
    b, _ = ref_1d(act, fd, ONE_D["dsquare"], q)
    return a / q - b, sa / q + b


def ref_2d(act, f, q1, q2, c):
    """Nested adaptive QUADPACK (scipy) over the conditional decomposition, split at the kinks: an algorithm
    independent of sigprop's composite Gauss–Legendre rules, good to about 1e-13 relative."""
    s1, a, b = math.sqrt(q1), c * math.sqrt(q2), math.sqrt(q2 * (1 - c * c))
    kinks = [float(k) for k in act.kinks]
    dens = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731

    def pieces(fun, points, lim=12.0):
        edges = [-lim, *sorted({p for p in points if -lim < p < lim}), lim]
        return sum(integrate.quad(fun, lo, hi, epsabs=1e-15, epsrel=1e-14, limit=200)[0]
                   for lo, hi in zip(edges[:-1], edges[1:]))

    def inner(z):
        return pieces(lambda w: f(a * z + b * w) * dens(w), [(t - a * z) / b for t in kinks] + [0.0])

    outer = [t / s1 for t in kinks] + ([t * max(b, 1.0) / a for t in kinks] if a else []) + [0.0]
    val = pieces(lambda z: f(s1 * z) * inner(z) * dens(z), outer)
    sq = [pieces(lambda z: f(math.sqrt(qq) * z) ** 2 * dens(z), [t / math.sqrt(qq) for t in kinks] + [0.0])
          for qq in (q1, q2)]
    return val, math.sqrt(sq[0] * sq[1])


def time_per_value(act, kind, args, n):
    expectation(act, kind, *args)                          # compile
    times = []
    for i in range(n):
        jitter = 1 + 1e-9 * (i + 1)
        moved = (args[0] * jitter,) + tuple(args[1:])
        t = time.perf_counter()
        expectation(act, kind, *moved)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one q and one pair (a smoke run)")
    ap.add_argument("names", nargs="*", help="activations to run (default: all registered)")
    args = ap.parse_args()
    warnings.simplefilter("ignore", integrate.IntegrationWarning)   # roundoff notes at 1e-14 requests
    qs, pairs, reps = ((1.0,), PAIRS[:1], 3) if args.quick else (QS, PAIRS, 9)
    names = args.names or sorted(ACTIVATIONS)
    print(f"{'activation':14s} {'sources':9s} {'worst 1-D':>10s} {'worst 2-D':>10s} {'t square':>10s} "
          f"{'t kernel':>10s} {'t dkernel':>10s} {'t ddkernel':>10s}  (errors relative to max(|E|, scale); "
          "times per value)")
    start = time.perf_counter()
    for name in names:
        act = ACTIVATIONS[name]
        sources = "".join(LETTER[v.partition(":")[0]] for v in act.expectation_sources().values())
        fd = functions(act)
        err1 = err2 = 0.0
        for kind in (*ONE_D, "curvature") if act.is_continuous else ONE_D:
            for q in qs:
                try:
                    got = expectation(act, kind, q)
                except OutOfRangeError:
                    continue                                   # beyond float64 (E[exp'⁴] at q = 100), said so
                ref, scale = ref_curvature(act, fd, q) if kind == "curvature" else ref_1d(act, fd, ONE_D[kind], q)
                err1 = max(err1, float(abs(got - ref) / max(abs(ref), scale, mp.mpf(1e-300))))
        ff = functions(act, "math")
        for kind, deriv in TWO_D.items():
            for q1, q2, c in pairs:
                ref, scale = ref_2d(act, ff[deriv], q1, q2, c)
                if scale == 0:
                    continue                                   # φ' = 0 a.e. (step, sign): nothing to compare
                got = expectation(act, kind, q1, q2, c * math.sqrt(q1 * q2))
                err2 = max(err2, float(abs(got - ref) / max(abs(ref), scale)))
        t_sq = time_per_value(act, "square", (1.0,), reps)
        t_k = time_per_value(act, "kernel", (1.0, 1.0, 0.5), reps)
        t_dk = time_per_value(act, "dkernel", (1.0, 1.0, 0.5), reps) if act.dphi != 0 else float("nan")
        t_ddk = time_per_value(act, "ddkernel", (1.0, 1.0, 0.5), reps) if act.is_continuous else float("nan")
        print(f"{name:14s} {sources:9s} {err1:10.1e} {err2:10.1e} {1e3 * t_sq:8.3f}ms {1e3 * t_k:8.3f}ms "
              f"{1e3 * t_dk:8.3f}ms {1e3 * t_ddk:8.3f}ms", flush=True)
    print(f"sources per kind ({', '.join(KINDS)}): R registered, D derived, N numerical, - undefined (phi jumps); "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
