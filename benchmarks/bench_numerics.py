"""Speed and accuracy of sigprop's numerics (printed, not asserted).

Run: python benchmarks/bench_numerics.py
"""
import time

import mpmath as mp
import numpy as np

from sigprop.numerics import expect1, expect2, predict
from sigprop.theory import parse


def tanh_dsquare_reference(q):
    s = mp.sqrt(q)
    return mp.quad(lambda z: (1 - mp.tanh(s * z) ** 2) ** 2 * mp.npdf(z),
                   [-mp.inf, -10 / s, -1 / s, 0, 1 / s, 10 / s, mp.inf])


def main():
    mp.mp.dps = 30
    dt2 = lambda u: (1 - np.tanh(u) ** 2) ** 2
    print("E[tanh'(sqrt(q) z)^2]: relative error vs 30-digit mpmath, and time per call")
    for q in (1e-3, 1.0, 50.0, 1e3, 1e5):
        ref = float(tanh_dsquare_reference(q))
        t = time.perf_counter()
        for _ in range(20):
            val = expect1(dt2, q * (1 + 1e-15 * _))
        dt = (time.perf_counter() - t) / 20
        print(f"  q={q:8.0e}  rel.err={abs(val - ref) / ref:.1e}  {1e3 * dt:.2f} ms")
    print("E[tanh(u) tanh(v)] bivariate: time per call")
    for q, c in ((1.0, 0.5), (50.0, 0.9), (1e3, 0.999)):
        t = time.perf_counter()
        expect2(np.tanh, np.tanh, q, q, c * q)
        print(f"  q={q:8.0e} c={c}  {1e3 * (time.perf_counter() - t):.2f} ms")
    print("predict(): wall time")
    for arch in ("50*dense(tanh,sw2=2.5,sb2=0.05)", "50*residual(dense(tanh),dense(linear))",
                 "1000*dense(tanh,sw2=1)", "10000*residual(dense(relu,sw2=2))"):
        t = time.perf_counter()
        pred = predict(parse(arch))
        print(f"  {arch:42s} {time.perf_counter() - t:7.2f} s   log GSC(0,L) = {pred.values['log_gsc'][0]:.4f}")


if __name__ == "__main__":
    main()
