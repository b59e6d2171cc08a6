"""Benchmark of a newcomer's first start: a fresh clone to a server answering `/healthz`.

Clones this repository twice into a temporary folder and measures, in the same run:

1. `bin/setup` (what `bin/run` does first: the server's dependencies only), then `cohorthub serve`
   until `GET /healthz` answers: the first start;
2. the baseline: `bin/setup --dev` (what every start installed before: the server's dependencies and
   the development tools) in the other clone.

Both installs use the same pip configuration and cache; the machine is shared, so figures are noisy.

    python bench/first_start.py            # prints seconds and the ratio to the baseline
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(args: list[str], cwd: Path) -> float:
    """Seconds `args` took in `cwd` (raises if it fails)."""
    start = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def free_port() -> int:
    """An ephemeral TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def time_to_healthz(clone: Path) -> float:
    """Seconds from starting `cohorthub serve` to its first `200` on `/healthz`."""
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(clone / ".venv/bin/cohorthub"), "serve", "--port", str(port), "--no-request-log"],
        cwd=clone,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    """Measure and print."""
    argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    ).parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runtime, dev = Path(tmp) / "runtime", Path(tmp) / "dev"
        for clone in (runtime, dev):
            subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        setup = timed(["bin/setup"], runtime)
        serve = time_to_healthz(runtime)
        baseline = timed(["bin/setup", "--dev"], dev)
    print(f"bin/setup (server dependencies):        {setup:6.1f} s")
    print(f"cohorthub serve until /healthz answers: {serve:6.1f} s")
    print(f"first start (both):                     {setup + serve:6.1f} s")
    print(f"baseline bin/setup --dev (dev tools):   {baseline:6.1f} s")
    print(f"ratio first-start install / baseline:   {setup / baseline:6.2f}")


if __name__ == "__main__":
    main()
