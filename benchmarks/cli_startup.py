"""Start-up time of ``panel2patch --help`` against a bare interpreter, measured back to back.

    python benchmarks/cli_startup.py [--repeat 10]

Prints the median wall time of each command and their ratio. ``panel2patch --help`` must stay well
under a second: sub-commands import their modules lazily and no plugin is loaded to print help.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "panel2patch --help": [sys.executable, "-m", "panel2patch", "--help"],
    "panel2patch plugins": [sys.executable, "-m", "panel2patch", "plugins"],
}


def median_seconds(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    results = {name: median_seconds(cmd, args.repeat) for name, cmd in COMMANDS.items()}
    base = results["python -c pass (baseline)"]
    print(f"{'command':<30}{'median s':>10}{'x baseline':>12}")
    for name, seconds in results.items():
        print(f"{name:<30}{seconds:>10.3f}{seconds / base:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
