"""Where a measurement's time goes (printed, not asserted): ``measure`` of ``L*dense(tanh,sw2=2.5,sb2=0.05)`` under
``torch.profiler`` on one device, after an untimed warm-up.

Prints the wall time of the profiled run, how many operators ran and, on a GPU, how many kernels it launched and
the device's busy time (the sum of the kernels' times; far below the wall time means the GPU waited on the host:
launches, drawing the weights, copies), then the operators that took the most time on the host and on the device,
and the calls that synchronize the host with the device. Run it when a GPU measurement is slower than expected,
before guessing.

Run: python benchmarks/profile_measure.py [--device cuda] [--width 1024] [--seeds 10] [--depth 50] [--dtype float64]
[--rows 15] [--trace trace.json]
"""
import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from sigprop.theory import parse
from sigprop.validate import measure

ARCH = "{L}*dense(tanh,sw2=2.5,sb2=0.05)"
#: operators that make the host wait for the device
SYNCS = ("aten::_local_scalar_dense", "aten::item", "cudaDeviceSynchronize", "cudaStreamSynchronize",
         "cudaMemcpy", "cudaMemcpyAsync")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--depth", type=int, default=50)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--rows", type=int, default=15, help="operators listed per table (default 15)")
    ap.add_argument("--trace", default=None, help="also write a Chrome trace (open in chrome://tracing or Perfetto)")
    args = ap.parse_args()
    net = parse(ARCH.format(L=args.depth))
    cuda = args.device.startswith("cuda")
    measure(net, width=min(args.width, 64), seeds=2, dtype=args.dtype, device=args.device)     # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        start = time.perf_counter()
        meas = measure(net, width=args.width, seeds=args.seeds, dtype=args.dtype, device=args.device)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
    events = prof.key_averages()
    print(f"{net.describe()}, width {args.width}, {args.seeds} seeds, {args.dtype} on {args.device}: {wall:.2f} s "
          f"({meas.meta['seeds_per_batch']} seeds per batch, stacked: {meas.meta['stacked']})")
    print(f"operators run: {sum(e.count for e in events if e.key.startswith('aten::'))}")
    if cuda:
        kernels = [e for e in events if e.device_time_total > 0 and not e.key.startswith(("aten::", "cuda"))]
        busy = sum(e.self_device_time_total for e in kernels) / 1e6
        print(f"kernels launched: {sum(e.count for e in kernels)}; device busy {busy:.2f} s of {wall:.2f} s wall")
        print(f"peak memory: {meas.meta['peak_memory_bytes'] / 2**20:.0f} MiB")
    print("\nmost host time (self):")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    if cuda:
        print("most device time (self):")
        print(events.table(sort_by="self_device_time_total", row_limit=args.rows))
    syncs = [e for e in events if e.key in SYNCS]
    print("host-device synchronizations: " + (", ".join(f"{e.key} x{e.count} ({e.cpu_time_total / 1e3:.1f} ms)"
                                                        for e in syncs) or "none recorded"))
    if args.trace:
        prof.export_chrome_trace(args.trace)
        print(f"wrote {args.trace}")


if __name__ == "__main__":
    main()
