"""Accuracy of the array expectations (``numerics.vectorized.expect``) against mpmath, for every catalog activation
and every expectation kind (printed, not asserted).

Points: 1-D kinds at q from 1e-8 to 1e8; kernels at unequal variances, at c = 0 and ±0.5, and within 1e-12 of
±1, and at small and large variances. The reference is ``numerics.reference`` (closed forms at ``--digits``
digits; others by graded Gauss–Legendre panels in mpmath, nested for kernels: slow, so kernels without a closed
form are checked at fewer points and ``--digits-2d`` digits). The error is relative to the integrand's scale:
E[|g(u)|] for 1-D kinds of integrand g (|E| for the non-negative ones; for a signed one such as SELU's mean at
q = 1, which nearly cancels, |E| would not be a scale), √(E[f(u)²] E[f(v)²]) for kernels (f = φ, φ' or φ'' where
φ'' has no Dirac deltas); the table also says
whether the reported error estimate covered the actual error (a point where it did not is checked again
against a reference with ten more digits, since the nested mpmath rule can fall short of its digits near c = ±1).

Run: python benchmarks/bench_accuracy.py [--digits 40] [--digits-2d 20] [--activations tanh,relu,...]
"""
import argparse
import time

import numpy as np

from sigprop.numerics.expectations import closed_form_function, expectation
from sigprop.numerics.quadrature import expect1
from sigprop.numerics.reference import reference_expectation
from sigprop.numerics.vectorized import _integrands, expect
from sigprop.theory import get_activation
from sigprop.theory.activations import ACTIVATIONS
from sigprop.theory.expectations import ARITY, KINDS, UndefinedExpectation

Q1D = (1e-8, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e8)
C_ALL = (0.0, 0.5, -0.5, 1 - 1e-12, -(1 - 1e-12))
PAIRS_CLOSED = [(0.5, 2.0, c) for c in C_ALL] + [(1e-4, 1e-4, 0.5), (1e4, 1e4, 1 - 1e-12), (1e-8, 1e8, 0.3)]
PAIRS_QUAD = [(0.5, 2.0, 0.5), (1.0, 1.0, 1 - 1e-12), (2.0, 2.0, -(1 - 1e-12))]
SQUARE = {"kernel": "square", "dkernel": "dsquare"}


def points(act, kind):
    if ARITY[kind] == 1:
        return [(q,) for q in Q1D]
    try:
        closed = closed_form_function(act, kind) is not None
    except (UndefinedExpectation, ValueError):           # φ'' kinds of a φ that jumps: not defined
        return []
    pairs = PAIRS_CLOSED if closed else PAIRS_QUAD
    return [(q1, q2, c * np.sqrt(q1 * q2)) for q1, q2, c in pairs]


#: 1-D kinds whose integrand changes sign (the others are squares, |E| is their scale)
SIGNED = ("mean", "xmean", "curvature")


def scale(act, kind, args, ref):
    if kind in SIGNED and kind in _integrands(act):        # E|g| by the panel rule (a scale: two digits do)
        g = _integrands(act)[kind]
        absolute = expect1(lambda u: np.abs(g(u)), args[0], kinks=tuple(float(k) for k in act.kinks))
        if kind == "curvature":                            # and φ(t)·|jump| of φ''s Dirac deltas at t
            normal = np.exp(-np.array([t for t, _ in _integrands(act)["jumps"]]) ** 2 / (2 * args[0]))
            absolute += sum(abs(j * float(np.ravel(_integrands(act)["mean"](np.full(1, t)))[0])) * d
                            for (t, j), d in zip(_integrands(act)["jumps"], normal)) / np.sqrt(2 * np.pi * args[0])
        if absolute > 0 and np.isfinite(absolute):
            return float(absolute)
    if kind in SQUARE:
        return float(np.sqrt(expectation(act, SQUARE[kind], args[0]) * expectation(act, SQUARE[kind], args[1])))
    if kind == "ddkernel":                  # E[φ''(u)²] where φ'' has no Dirac deltas (the diagonal is defined)
        try:
            return float(np.sqrt(expectation(act, kind, *[args[0]] * 3) * expectation(act, kind, *[args[1]] * 3)))
        except (ValueError, ArithmeticError):
            pass
    return abs(ref) if ref != 0 else 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--digits", type=int, default=40)
    ap.add_argument("--digits-2d", type=int, default=20)
    ap.add_argument("--activations", default=None, help="comma-separated names (default: every registered one)")
    args = ap.parse_args()
    names = args.activations.split(",") if args.activations else sorted(ACTIVATIONS)
    print(f"{'activation':14s} {'kind':10s} {'points':>6s} {'worst rel. error':>16s}  at {'':28s} covered  seconds")
    for name in names:
        act = get_activation(name)
        for kind in KINDS:
            t = time.perf_counter()
            worst, where, covered, n = 0.0, None, True, 0
            for p in points(act, kind):
                try:
                    digits = args.digits if (ARITY[kind] == 1 or closed_form_function(act, kind)) else args.digits_2d
                    ref = reference_expectation(act, kind, *p, digits=digits)
                except (UndefinedExpectation, ValueError, ArithmeticError):
                    continue
                if not np.isfinite(ref):
                    continue
                try:
                    value, err = expect(act, kind, *p, error=True)
                except (ValueError, ArithmeticError):
                    continue
                n += 1
                if abs(float(value) - ref) > float(err) + 4 * np.finfo(float).eps * abs(ref):
                    # a miss: the reference itself may be short of digits (nested panels near c = ±1)
                    ref = reference_expectation(act, kind, *p, digits=digits + 10)
                rel = abs(float(value) - ref) / (scale(act, kind, p, ref) or 1.0)     # step's E[φ'²] is 0
                covered &= abs(float(value) - ref) <= float(err) + 4 * np.finfo(float).eps * abs(ref)
                if rel >= worst:
                    worst, where = rel, p
            if n:
                at = ", ".join(f"{v:.3g}" for v in where)
                print(f"{name:14s} {kind:10s} {n:6d} {worst:16.1e}  at ({at}){'':{max(0, 26 - len(at))}s} "
                      f"{'yes' if covered else 'NO':7s}  {time.perf_counter() - t:6.1f}", flush=True)


if __name__ == "__main__":
    main()
