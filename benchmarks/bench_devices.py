"""Measurement on each device, side by side (printed, not asserted): the same networks on the CPU and on a GPU.

- ``measure`` of ``L*dense(tanh,sw2=2.5,sb2=0.05)`` at --width over --seeds networks in --dtype with exact probes
  (one untimed warm-up run at a small width first; CUDA timings synchronize before reading the clock), with the
  seeds per batch it chose and, on CUDA, its peak memory; the speed-up is the first device's time over each;
- with --reproduce, the default ``sigprop reproduce`` (the ``gsc`` experiment at its full settings) on each
  device: its total time, the part spent measuring (the predictions run on the CPU either way), the seeds per
  batch of its measurements and, on CUDA, their largest peak memory.

The agreement of the devices' numbers is printed too: the largest difference of log GSC(l, L) between the first
device and each other one (the networks are drawn on the CPU, so the same seed is the same network everywhere).

Run: python benchmarks/bench_devices.py [--devices cpu cuda] [--width 1024] [--seeds 10] [--cpu-threads 2]
[--reproduce]
"""
import argparse
import tempfile
import time

import numpy as np
import torch

from sigprop.theory import parse
from sigprop.validate import measure
from sigprop.validate.experiments import run_experiment

ARCH = "{L}*dense(tanh,sw2=2.5,sb2=0.05)"


def synchronize(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def timed_measure(net, width, seeds, dtype, device):
    measure(net, width=min(width, 64), seeds=2, dtype=dtype, device=device)       # warm-up: first calls set up
    synchronize(device)
    t = time.perf_counter()
    meas = measure(net, width=width, seeds=seeds, dtype=dtype, device=device)
    synchronize(device)
    return time.perf_counter() - t, meas


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", nargs="+", default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    ap.add_argument("--cpu-threads", type=int, default=None, help="torch threads on the CPU (default: torch's)")
    ap.add_argument("--reproduce", action="store_true", help="also time the default sigprop reproduce per device")
    args = ap.parse_args()
    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    net = parse(ARCH.format(L=args.depth))
    print(f"{net.describe()}, width {args.width}, {args.seeds} seeds, exact probes; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads"
          + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    print(f"{'device':>8s} {'dtype':>8s} {'measure (s)':>12s} {'speed-up':>9s} {'seeds/batch':>11s} "
          f"{'peak MiB':>9s} {'max |Δ log GSC|':>16s}")
    for dtype in args.dtype:
        first = None
        for device in args.devices:
            seconds, meas = timed_measure(net, args.width, args.seeds, dtype, device)
            first = first or (seconds, meas)
            peak = meas.meta.get("peak_memory_bytes")
            diff = np.max(np.abs(meas.log_gsc_per_input() - first[1].log_gsc_per_input()))
            print(f"{device:>8s} {dtype:>8s} {seconds:12.2f} {first[0] / seconds:9.1f} "
                  f"{meas.meta['seeds_per_batch']:11d} {'' if peak is None else f'{peak / 2**20:.0f}':>9s} "
                  f"{diff:16.1e}", flush=True)
    if args.reproduce:
        print("default sigprop reproduce (gsc, full settings)")
        print(f"{'device':>8s} {'total (s)':>10s} {'measuring (s)':>14s} {'seeds/batch':>11s} {'peak MiB':>9s}")
        for device in args.devices:
            with tempfile.TemporaryDirectory() as out:
                meta = run_experiment("gsc", out=out, device=device, progress=False, log=lambda *a: None)
            timings = meta["timings_s"]
            measuring = sum(v for k, v in timings.items() if k.startswith("measure "))
            costs = meta["measurement_cost"].values()
            per_batch = sorted({c["seeds_per_batch"] for c in costs})
            peak = max((c.get("peak_memory_bytes", 0) for c in costs), default=0)
            print(f"{device:>8s} {timings['total']:10.1f} {measuring:14.1f} {'/'.join(map(str, per_batch)):>11s} "
                  f"{f'{peak / 2**20:.0f}' if peak else '':>9s}", flush=True)


if __name__ == "__main__":
    main()
