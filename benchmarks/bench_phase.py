"""Phase diagram of tanh networks on a grid: sigprop's vectorized solver against a plain 40-node Gauss–Hermite
NumPy loop on the same grid (printed, not asserted).

The reference is what one writes by hand: q* by 100 iterations of the length map and c* by 30 iterations of the
correlation map (from c = 0.5), every expectation by a 40-node Gauss–Hermite rule (40 × 40 for the 2-D ones),
vectorized over the grid in chunks. Both runs are timed in this process (median of --repeat runs); the accuracy of
each is measured against the per-point solver (``sigprop.numerics.phase``: scalar kink-aware quadrature and
Brent's method) at --check random grid points, and against 30-digit mpmath at a few of them.

Run: python benchmarks/bench_phase.py [--grid 200] [--repeat 3] [--check 40]
"""
import argparse
import statistics
import time

import mpmath as mp
import numpy as np

from sigprop.numerics import vectorized
from sigprop.numerics.phase import phase_point
from sigprop.numerics.phase_diagram import phase_diagram
from sigprop.numerics.reference import reference_expectation


def gauss_hermite_reference(sw2, sb2, nodes=40, q_iterations=100, c_iterations=30, chunk=2000):
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / np.sqrt(2 * np.pi)
    z1, z2 = (a.ravel() for a in np.meshgrid(z, z, indexing="ij"))
    w2 = np.outer(w, w).ravel()
    out = {k: np.empty(sw2.size) for k in ("q_star", "chi_1", "c_star", "chi_c", "xi_c")}
    for i in range(0, sw2.size, chunk):
        a, b = sw2[i:i + chunk, None], sb2[i:i + chunk, None]
        q = np.ones_like(a)
        for _ in range(q_iterations):
            q = a * (np.tanh(np.sqrt(q) * z) ** 2 @ w)[:, None] + b
        s = np.sqrt(q)
        chi1 = a[:, 0] * ((1 / np.cosh(s * z)) ** 4 @ w)
        c = np.full_like(q, 0.5)
        for _ in range(c_iterations):
            u, v = s * z1, s * (c * z1 + np.sqrt(1 - c**2) * z2)
            c = (a * ((np.tanh(u) * np.tanh(v)) @ w2)[:, None] + b) / q
        u, v = s * z1, s * (c * z1 + np.sqrt(1 - c**2) * z2)
        chi_c = a[:, 0] * (((1 / np.cosh(u)) ** 2 * (1 / np.cosh(v)) ** 2) @ w2)
        for k, val in (("q_star", q[:, 0]), ("chi_1", chi1), ("c_star", c[:, 0]), ("chi_c", chi_c),
                       ("xi_c", 1 / np.abs(np.log(chi_c)))):
            out[k][i:i + chunk] = val
    return out


def timed(fn, repeat):
    times, result = [], None
    for _ in range(repeat):
        vectorized.clear_caches()
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, result


def mp_fixed_points(sw2, sb2, digits=30):
    """q* and the chaotic c* from 30-digit expectations (secant iterations of the mpmath maps)."""
    mp.mp.dps = digits
    sq = lambda q: mp.mpf(reference_expectation("tanh", "square", float(q), digits=digits))  # noqa: E731
    q = mp.findroot(lambda q: sw2 * sq(q) + sb2 - q, 1.0, tol=1e-28)
    qf = float(q)
    kern = lambda c: reference_expectation("tanh", "kernel", qf, qf, float(c) * qf, digits=20)  # noqa: E731
    c = mp.findroot(lambda c: (sw2 * kern(c) + sb2) / (sw2 * sq(qf) + sb2) - c, 0.5, tol=1e-24)
    return qf, float(c)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--check", type=int, default=40)
    ap.add_argument("--mpmath", type=int, default=2, help="grid points checked against mpmath (slow: ~1 min each)")
    args = ap.parse_args()
    w, b = np.meshgrid(np.linspace(1, 4, args.grid), np.linspace(0, 0.3, args.grid))
    sw2, sb2 = w.ravel(), b.ravel()
    t_ref, runs_ref, ref = timed(lambda: gauss_hermite_reference(sw2, sb2), args.repeat)
    t_sp, runs_sp, sp = timed(lambda: phase_diagram("tanh", sw2, sb2), args.repeat)
    print(f"tanh phase diagram, {args.grid} x {args.grid} grid, sw2 in [1, 4], sb2 in [0, 0.3]; median of "
          f"{args.repeat} runs")
    print(f"  40-node Gauss-Hermite loop : {t_ref:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in runs_ref)})")
    print(f"  sigprop phase_diagram      : {t_sp:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in runs_sp)})")
    rng = np.random.default_rng(0)
    picks = rng.choice(sw2.size, args.check, replace=False)
    errs = {"sigprop": {k: [] for k in ("q_star", "chi_1", "c_star", "chi_c")},
            "gauss-hermite": {k: [] for k in ("q_star", "chi_1", "c_star", "chi_c")}}
    for i in picks:
        p = phase_point("tanh", float(sw2[i]), float(sb2[i]))
        if sb2[i] == 0 or p.q_star == 0:
            continue
        for name, res in (("sigprop", sp), ("gauss-hermite", ref)):
            for k in errs[name]:
                truth = getattr(p, k)
                if k == "c_star" and (truth == 1.0 or abs(truth) < 1e-3):
                    continue
                errs[name][k].append(abs(res[k][i] - truth) / abs(truth))
    print(f"  worst relative difference from the per-point solver at {args.check} random points (c* = 1 and "
          "|c*| < 1e-3 skipped):")
    for name in errs:
        print(f"    {name:14s} " + "  ".join(f"{k} {max(v):.1e}" for k, v in errs[name].items() if v))
    chaotic = [i for i in picks if sp["phase"][i] == "chaotic" and sb2[i] > 0][:args.mpmath]
    for i in chaotic:
        q_mp, c_mp = mp_fixed_points(float(sw2[i]), float(sb2[i]))
        print(f"  vs mpmath at sw2={sw2[i]:.4f} sb2={sb2[i]:.4f}: q* rel.err sigprop "
              f"{abs(sp['q_star'][i] - q_mp) / q_mp:.1e} / GH {abs(ref['q_star'][i] - q_mp) / q_mp:.1e};  "
              f"c* rel.err sigprop "
              f"{abs(sp['c_star'][i] - c_mp) / abs(c_mp):.1e} / GH {abs(ref['c_star'][i] - c_mp) / abs(c_mp):.1e}")


if __name__ == "__main__":
    main()
