#!/usr/bin/env bash
# The GPU checks and timings in one run, for a machine with a CUDA device (about 8 minutes on one H100):
#   1. the CUDA tests (tests/validate/test_cuda.py: the GPU measures as the CPU does);
#   2. measure and the default reproduce on the CPU (at --cpu-threads, default 2) and on the GPU, side by side
#      (benchmarks/bench_devices.py);
#   3. the cost of measurement on the GPU against the plain way (benchmarks/bench_measure.py);
#   4. where the GPU measurement's time goes (benchmarks/profile_measure.py);
#   5. transformers fed token ids, measured on the GPU against the plain way (benchmarks/bench_language_model.py).
# Each step's output is printed and copied into OUT (default gpu_results/). Run from the repository root with
# sigprop installed (pip install -e ".[test]"): bash benchmarks/gpu_checks.sh [OUT] [CPU_THREADS]
set -uo pipefail
out=${1:-gpu_results}
threads=${2:-2}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name())" || exit 1
"$python" -m pytest -q -p no:cacheprovider tests/validate/test_cuda.py 2>&1 | tail -15 | tee "$out/test_cuda.txt"
"$python" benchmarks/bench_devices.py --cpu-threads "$threads" --reproduce 2>&1 | tee "$out/devices.txt"
"$python" benchmarks/bench_measure.py --device cuda --width 256 1024 --seeds 10 --repeats 1 2>&1 \
    | tee "$out/measure_cuda.txt"
"$python" benchmarks/profile_measure.py --device cuda --rows 10 > "$out/profile.txt" 2>&1
tail -40 "$out/profile.txt"
"$python" -W ignore benchmarks/bench_language_model.py --device cuda 2>&1 | tee "$out/language_model_cuda.txt"
