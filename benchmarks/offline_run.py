"""Wall time of `aggregator run` on the offline example, process start included.

    python benchmarks/offline_run.py [--runs 7]

Each run starts a fresh process on a fresh database (a first run: everything is new), as a
user's first `aggregator --config examples/offline.yaml run` would. Prints each time and the
median.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    exe = shutil.which("aggregator") or sys.exit("install the project first: pip install -e .")
    times = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "offline.db"
            cmd = [exe, "--config", str(ROOT / "examples/offline.yaml"), "--db", str(db), "run"]
            started = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times.append(time.perf_counter() - started)
    print("runs (s):", " ".join(f"{t:.3f}" for t in times))
    print(f"median wall time of `run` on the offline example: {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
