"""Per activation of the catalog: the fast path's worst error against mpmath, and its time per value.

For every registered activation and each expectation kind, sigprop's value (closed form or quadrature, as
``sigprop.numerics.expectation`` chooses) is compared with an mpmath integral of the same φ: 1-D kinds at 30
digits for q in {0.01, 0.3, 1, 4, 100}; the kernels against nested adaptive QUADPACK over the conditional
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

from sigprop.numerics import expectation
from sigprop.theory import ACTIVATIONS
from sigprop.theory.piecewise import piecewise_form
from sigprop.theory.symbols import x

QS = (0.01, 0.3, 1.0, 4.0, 100.0)
PAIRS = ((1.0, 1.0, 0.5), (0.5, 2.0, 0.95), (1.7, 0.4, -0.9))
ONE_D = {"mean": (0, 1), "square": (0, 2), "dsquare": (1, 2)}     # kind -> (derivative?, power)
TWO_D = {"kernel": 0, "dkernel": 1}


def functions(act, module="mpmath"):
    return tuple(sp.lambdify(x, piecewise_form(e), module) for e in (act.phi, act.dphi))


def breaks(act, scale):
    return [mp.mpf(float(k)) / scale for k in act.kinks] + [mp.mpf(t) for t in (-4, -1, 0, 1, 4)]


def ref_1d(act, f, power, q):
    s = mp.sqrt(q)
    pts = [-mp.inf] + sorted(set(breaks(act, s))) + [mp.inf]
    with mp.workdps(30):
        val = mp.quad(lambda z: f(s * z) ** power * mp.npdf(z), pts)
        scale = mp.quad(lambda z: abs(f(s * z)) ** power * mp.npdf(z), pts)
    return val, scale


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
    print(f"{'activation':14s} {'sources':7s} {'worst 1-D':>10s} {'worst 2-D':>10s} {'t square':>10s} "
          f"{'t kernel':>10s} {'t dkernel':>10s}  (errors relative to max(|E|, scale); times per value)")
    start = time.perf_counter()
    for name in names:
        act = ACTIVATIONS[name]
        sources = "".join(v[0].upper() for v in act.expectation_sources().values())
        fd = functions(act)
        err1 = err2 = 0.0
        for kind, (deriv, power) in ONE_D.items():
            for q in qs:
                ref, scale = ref_1d(act, fd[deriv], power, q)
                got = expectation(act, kind, q)
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
        print(f"{name:14s} {sources:7s} {err1:10.1e} {err2:10.1e} {1e3 * t_sq:8.3f}ms {1e3 * t_k:8.3f}ms "
              f"{1e3 * t_dk:8.3f}ms", flush=True)
    print(f"sources per kind (mean, square, dsquare, kernel, dkernel): R registered, D derived, N numerical; "
          f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
