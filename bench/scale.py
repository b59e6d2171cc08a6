"""Every scale target in one run: ingest, track, bulk import and segment sizes under writes, both stores.

    .venv/bin/python bench/scale.py                   # the sizes the figures in docs/scaling.md use
    .venv/bin/python bench/scale.py --quick           # smaller runs (a few minutes), for a smoke test
    .venv/bin/python bench/scale.py --backend sqlite

Runs each benchmark script in turn (each starts its own server on a fresh database and measures its
own baseline in the same run), streams its output, then prints one table: every line that states a
figure against its target, under the benchmark and store it came from, with the load average of the
machine and its speed when that benchmark started. Nothing is measured here that the scripts do not
print, but the machine's speed: the best of three runs of a pure-Python loop of 10 million additions,
at the start and again before each benchmark (a shared machine can slow down within one run), to tell
a machine that is slower for everything from a change that made one path slower.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, arguments, arguments with --quick)
RUNS: list[tuple[str, list[str], list[str]]] = [
    (
        "cohort_import.py",
        ["--users", "200000", "--requests", "200"],
        ["--users", "50000", "--requests", "60"],
    ),
    ("users_track.py", ["--users", "100000", "--no-events"], ["--users", "15000", "--no-events"]),
    ("users_track.py", ["--users", "100000"], ["--users", "15000"]),
    ("users_import.py", ["--users", "200000"], ["--users", "20000"]),
    (
        "segments_under_writes.py",
        ["--users", "200000", "--seconds", "30"],
        ["--users", "50000", "--seconds", "8"],
    ),
]
#: Output lines that state a figure against a target, or which store the lines after them are about.
MARKS = ("target", "p99", "changes/s")
#: Lines that carry one of `MARKS` but only as context (quiet figures, baselines alone).
CONTEXT = ("size quiet", "/healthz quiet", "baseline")
STORES = ("sqlite", "postgresql")


def summary_lines(output: str) -> list[str]:
    """The lines of one script's output that carry a target figure, each prefixed by its store."""
    store = ""
    found = []
    for line in output.splitlines():
        lowered = line.strip().lower()
        if any(lowered.startswith(name) for name in STORES):
            store = line.strip().split()[0].rstrip(":")
        if any(mark in lowered for mark in MARKS) and not lowered.startswith(CONTEXT):
            found.append(f"{store:11} {line.strip()}")
    return found


def interpreter_seconds() -> float:
    """The best of three timings of a pure-Python loop of 10 million additions (the machine's speed)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    """Run every benchmark, then print the table of figures against targets."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    table: list[tuple[str, str, float, list[str]]] = []
    speed = interpreter_seconds()
    print(f"machine: a 10M-addition Python loop in {speed:.2f} s (best of 3), {os.cpu_count()} CPUs")
    started = time.perf_counter()
    for script, full, quick in RUNS:
        argv = [
            sys.executable,
            str(HERE / script),
            *(quick if args.quick else full),
            "--backend",
            args.backend,
        ]
        load, loop = os.getloadavg()[0], interpreter_seconds()
        heading = f"=== {script} {' '.join(argv[2:])}   (load average {load:.1f}, loop {loop:.2f} s)"
        print(f"\n{heading}", flush=True)
        run = subprocess.run(argv, capture_output=True, text=True, check=False)
        sys.stdout.write(run.stdout)
        if run.returncode != 0:
            sys.stdout.write(run.stderr)
            sys.exit(f"{script} failed with exit code {run.returncode}")
        table.append((f"{script} {' '.join(argv[2:-2])}", f"{load:.1f}", loop, summary_lines(run.stdout)))
    print(f"\n=== Targets ({time.perf_counter() - started:.0f} s in all; 10M-addition loop {speed:.2f} s)")
    for name, load_text, at_start, lines in table:
        print(f"{name}   (load average {load_text}, 10M-addition loop {at_start:.2f} s at its start)")
        for line in lines:
            print(f"  {line}")


if __name__ == "__main__":
    main()
