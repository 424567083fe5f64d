"""Start-up time of the command line and of the packages (printed, not asserted).

Each figure is the median wall time of fresh interpreters (the first run warms the file cache and is dropped).
Run: python benchmarks/bench_startup.py [repeats]
"""
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "sigprop --help": [sys.executable, "-m", "sigprop", "--help"],
    "sigprop predict --help": [sys.executable, "-m", "sigprop", "predict", "--help"],
    'sigprop predict "50*dense(relu,sw2=2)"': [sys.executable, "-m", "sigprop", "predict", "50*dense(relu,sw2=2)"],
    'sigprop predict "50*dense(tanh,sw2=2.5,sb2=0.05)"': [sys.executable, "-m", "sigprop", "predict",
                                                          "50*dense(tanh,sw2=2.5,sb2=0.05)"],
    "python -c 'import sigprop.theory'": [sys.executable, "-c", "import sigprop.theory"],
    "python -c 'import sigprop.numerics'": [sys.executable, "-c", "import sigprop.numerics"],
    "python -c 'import sigprop.validate'": [sys.executable, "-c", "import sigprop.validate"],
    "python -c 'pass' (interpreter alone)": [sys.executable, "-c", "pass"],
}


def median_seconds(cmd, repeats):
    times = []
    for i in range(repeats + 1):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        if i:
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"median wall time of {repeats} fresh processes")
    for label, cmd in COMMANDS.items():
        print(f"  {label:52s} {median_seconds(cmd, repeats):6.2f} s")


if __name__ == "__main__":
    main()
