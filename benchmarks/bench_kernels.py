"""NNGP and NTK of a data set: sigprop's kernels against neural-tangents (printed, not asserted).

1,000 inputs in R^10 (standard normal, so of different norms), depth 100, ReLU and erf, float64:
``100*dense(ACT,sw2=2,sb2=0.1),dense(linear,sw2=2,sb2=0.1)`` here, ``stax.serial(*[Dense(1, √2, √0.1), ACT()] *
100, Dense(1, √2, √0.1))`` in neural-tangents (the same network: its input kernel is x·x'/d too). sigprop's
figures: the first call in a fresh process (maps compiled from theory included; imports not), the median over
--repeat fresh processes, and the median of later calls. neural-tangents runs in another environment (it needs an older jax: see the team's peer notes) when
``--peers-python`` names its interpreter; its eager and jitted times (after a compile whose time is printed) are
taken in that process, and its kernels are compared with sigprop's entry by entry.

Run: python benchmarks/bench_kernels.py [--n 1000] [--depth 100] [--repeat 3] [--peers-python PATH]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

NT_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import jax
    jax.config.update("jax_enable_x64", True)
    from neural_tangents import stax
    x = np.load(sys.argv[1]); depth = int(sys.argv[2]); repeat = int(sys.argv[3]); out = sys.argv[4]
    acts = {"relu": stax.Relu(), "erf": stax.Erf()}
    res = {}
    for name, act in acts.items():
        w, b = 2 ** 0.5, 0.1 ** 0.5
        layers = [stax.Dense(1, W_std=w, b_std=b), act] * depth
        _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=w, b_std=b))
        for what in ("nngp", "ntk"):
            eager = []
            for _ in range(repeat):
                t = time.perf_counter(); k = np.asarray(kernel_fn(x, None, what)); eager.append(time.perf_counter() - t)
            jitted = jax.jit(kernel_fn, static_argnames="get")
            t = time.perf_counter(); np.asarray(jitted(x, None, get=what)); first = time.perf_counter() - t
            runs = []
            for _ in range(repeat):
                t = time.perf_counter(); k = np.asarray(jitted(x, None, get=what)); runs.append(time.perf_counter() - t)
            np.save(f"{out}_{name}_{what}.npy", k)
            res[f"{name}_{what}"] = {"eager": sorted(eager)[len(eager) // 2], "jit_first": first,
                                     "jit": sorted(runs)[len(runs) // 2]}
    print(json.dumps(res))
""")

FRESH = textwrap.dedent("""
    import sys, time
    import numpy as np
    from sigprop.theory import parse
    from sigprop.numerics.kernels import kernels
    x = np.load(sys.argv[1]); arch = sys.argv[2]; ntk = sys.argv[3] == "ntk"
    t = time.perf_counter(); kernels(parse(arch), x, ntk=ntk); print(time.perf_counter() - t)
""")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peers-python", default=None, help="python of an environment with neural-tangents 0.6.5")
    args = ap.parse_args()
    from sigprop.numerics.kernels import kernels
    from sigprop.theory import parse
    x = np.random.default_rng(0).normal(size=(args.n, 10))
    tmp = tempfile.mkdtemp()
    xfile = os.path.join(tmp, "x.npy")
    np.save(xfile, x)
    nt = None
    if args.peers_python:
        script = os.path.join(tmp, "peer_kernels.py")      # not nt.py: that name shadows a stdlib module
        with open(script, "w") as fh:
            fh.write(NT_SCRIPT)
        run = subprocess.run([args.peers_python, script, xfile, str(args.depth), str(args.repeat),
                              os.path.join(tmp, "nt")], capture_output=True, text=True)
        if run.returncode:
            print("neural-tangents failed:", run.stderr.strip().splitlines()[-1:])
        else:
            nt = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"NNGP/NTK of {args.n} inputs, depth {args.depth}, float64, median of {args.repeat} (2 CPU cores)")
    for act in ("relu", "erf"):
        arch = f"{args.depth}*dense({act},sw2=2,sb2=0.1),dense(linear,sw2=2,sb2=0.1)"
        for what in ("nngp", "ntk"):
            first = statistics.median(
                float(subprocess.run([sys.executable, "-c", FRESH, xfile, arch, what], capture_output=True,
                                     text=True, check=True).stdout.strip()) for _ in range(args.repeat))
            runs = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                k = kernels(parse(arch), x, ntk=what == "ntk")
                runs.append(time.perf_counter() - t)
            line = (f"  {act:4s} {what}: sigprop first call {first:5.2f} s, then {statistics.median(runs):5.2f} s")
            if nt:
                r = nt[f"{act}_{what}"]
                ref = np.load(os.path.join(tmp, f"nt_{act}_{what}.npy"))
                mine = k.ntk if what == "ntk" else k.nngp
                rel = np.abs(mine - ref) / np.abs(ref)
                line += (f" | neural-tangents eager {r['eager']:5.2f} s, jit {r['jit']:5.2f} s after a "
                         f"{r['jit_first']:5.1f} s compile | max rel. difference off the diagonal "
                         f"{np.max(rel - np.diag(np.diag(rel))):.1e}, on it {np.max(np.diag(rel)):.1e}")
            print(line)


if __name__ == "__main__":
    main()
