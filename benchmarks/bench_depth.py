"""Depth iteration at scale (printed, not asserted): ``predict_grid`` against ``predict`` one configuration at a
time, on the two workloads of a depth study.

1. One deep network: a tanh ResNet ``L*residual(dense(tanh,sw2=1,sb2=0.05))`` at depth --depth (10⁴). Its q grows
   linearly with depth, so every block meets a new variance (q ≈ 10⁴ at the top: the kernels take the panel route
   of the Hermite series). The reference is ``predict`` at depth --ref-depth, timed, and compared value by value
   with ``predict_grid`` at that depth.
2. Many configurations: tanh feed-forward networks of depth --grid-depth (1000) on a --configs × --configs grid of
   (σ_w², σ_b²) ∈ [1, 4] × [0, 0.3] in one ``predict_grid`` call; ``predict`` on --check random configurations of
   the grid gives the per-configuration time of the scalar route and the agreement.

Caches are cleared before each timed run (cold numbers; compilation of the maps included).

Run: python benchmarks/bench_depth.py [--depth 10000] [--ref-depth 1000] [--configs 100] [--grid-depth 1000]
"""
import argparse
import time

import numpy as np

from sigprop.numerics import predict, predict_grid, vectorized
from sigprop.theory import parse

RESNET = "{L}*residual(dense(tanh,sw2=1,sb2=0.05))"
FEEDFORWARD = "{L}*dense(tanh,sw2={w},sb2={b})"


def worst(grid_values, pred):
    """Worst relative difference over every quantity and layer (absolute below 1)."""
    out = 0.0
    for name, value in pred.values.items():
        got = grid_values[name]
        out = max(out, float(np.max(np.abs(got - value) / np.maximum(1.0, np.abs(value)))))
    return out


def cold(fn):
    vectorized.clear_caches()
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=10_000)
    ap.add_argument("--ref-depth", type=int, default=1000)
    ap.add_argument("--configs", type=int, default=100)
    ap.add_argument("--grid-depth", type=int, default=1000)
    ap.add_argument("--check", type=int, default=5)
    args = ap.parse_args()

    print(f"1. tanh ResNet {RESNET.format(L='L')}")
    t_ref, ref = cold(lambda: predict(parse(RESNET.format(L=args.ref_depth))))
    t_small, small = cold(lambda: predict_grid(RESNET.format(L=args.ref_depth)))
    t_big, big = cold(lambda: predict_grid(RESNET.format(L=args.depth)))
    print(f"   predict       depth {args.ref_depth:>6}: {t_ref:8.2f} s")
    print(f"   predict_grid  depth {args.ref_depth:>6}: {t_small:8.2f} s   worst difference from predict "
          f"{worst(small.values, ref):.1e}")
    print(f"   predict_grid  depth {args.depth:>6}: {t_big:8.2f} s   q at the top {big.values['q'][-1]:.4g}, "
          f"log GSC(0, L) {big.values['log_gsc'][0]:.6f}, out of range: {int(big.out_of_range)}")

    n = args.configs
    w, b = np.meshgrid(np.linspace(1, 4, n), np.linspace(0, 0.3, n), indexing="ij")
    print(f"2. {n * n} tanh feed-forward configurations of depth {args.grid_depth}, (sw2, sb2) in [1,4] x [0,0.3]")
    t_grid, grid = cold(lambda: predict_grid(FEEDFORWARD.format(L=args.grid_depth, w="w", b="b"), w=w, b=b))
    print(f"   predict_grid, all at once: {t_grid:8.1f} s   out of range: {int(np.count_nonzero(grid.out_of_range))}")
    rng = np.random.default_rng(0)
    times, diffs = [], []
    for _ in range(args.check):
        i, j = rng.integers(n, size=2)
        t, pred = cold(lambda: predict(parse(FEEDFORWARD.format(L=args.grid_depth, w=w[i, j], b=b[i, j]))))
        times.append(t)
        diffs.append(worst(grid.at((i, j)), pred))
    per = float(np.median(times))
    print(f"   predict, one at a time:    {per:8.2f} s per configuration (median of {args.check}), "
          f"{per * n * n / 3600:.1f} h for the grid")
    print(f"   worst difference at the {args.check} checked configurations: {max(diffs):.1e}")


if __name__ == "__main__":
    main()
