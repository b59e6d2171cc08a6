"""Benchmark of ``cohorthub sync``: the membership diff, and a first sync to a server.

1. Diff: a cohort of ``--members`` identifiers whose previous state is in the state file, against
   a CSV source with ``--changes`` changes (half exits, half entries): time and peak memory of
   ``diff_membership`` (reading and parsing the file included), next to a baseline measured in the
   same run: a plain Python ``set`` difference of the same data. Each measurement runs in a
   fresh child process so peak RSS is its own.
2. First sync: ``--first-sync`` identifiers sent to a server (the test partner server in a child
   process, or ``--endpoint``), end to end: identifiers per second.

    python bench/sync.py                                     # full size: 10M members, 100k changes
    python bench/sync.py --members 200000 --changes 2000 --first-sync 20000   # CI smoke
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]

from cohorthub.partner_client import Cohort, CohortSyncClient, DelimitedSource, StateStore, Target  # noqa: E402
from cohorthub.partner_client.diff import Partitioner, Spill, diff_membership  # noqa: E402
from cohorthub.partner_client.model import Secret  # noqa: E402

TARGET = Target("http://bench.invalid", "heap", Secret("PK"), Secret("DIK"))
DIFF_BUDGET_S, DIFF_BUDGET_MB = 5.0, 300.0


def ident(i: int) -> bytes:
    return b"user-%09d" % i


def write_ids(path: Path, start: int, stop: int) -> None:
    with path.open("wb") as file:
        step = 1 << 20
        for low in range(start, stop, step):
            file.write(b"".join(ident(i) + b"\n" for i in range(low, min(low + step, stop))))


def prepare(workdir: Path, members: int, changes: int) -> None:
    """Previous state = ids [0, members); source = ids [changes/2, members + changes/2)."""
    half = changes // 2
    write_ids(workdir / "previous.csv", 0, members)
    write_ids(workdir / "current.csv", half, members + half)
    spill = Spill()
    partitioner = Partitioner(spill)
    for _, batch in DelimitedSource(workdir / "previous.csv").batches():
        partitioner.add("external_id", batch)
    partitioner.flush()
    store = StateStore(workdir / "state.sqlite")
    key = store.ensure(TARGET, "bench").key
    store.import_members(key, ((ns, b, spill.read((ns, b))) for ns, b in spill.written_keys()))  # type: ignore[misc]
    store.close()
    spill.close()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_diff(workdir: Path) -> dict[str, float]:
    store = StateStore(workdir / "state.sqlite")
    key = store.ensure(TARGET, "bench").key
    start = time.perf_counter()
    changes = diff_membership(DelimitedSource(workdir / "current.csv").batches(), store.previous(key))
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "peak_mb": peak_mb(), "adds": changes.adds, "removes": changes.removes}
    changes.close()
    return result


def measure_baseline(workdir: Path) -> dict[str, float]:
    start = time.perf_counter()
    with (workdir / "previous.csv").open("rb") as file:
        previous = set(file.read().split())
    with (workdir / "current.csv").open("rb") as file:
        current = set(file.read().split())
    adds, removes = current - previous, previous - current
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mb": peak_mb(), "adds": len(adds), "removes": len(removes)}


def child(phase: str, workdir: Path) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--workdir", str(workdir)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def first_sync(count: int, endpoint: str | None, partner: str, keys: tuple[str, str]) -> dict[str, float]:
    server = None
    if endpoint is None:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.partner_client.partner_server"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        endpoint = server.stdout.readline().strip()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "members.csv"
            write_ids(source, 0, count)
            with CohortSyncClient(
                endpoint,
                partner=partner,
                partner_api_key=keys[0],
                data_import_key=keys[1],
                state=Path(tmp) / "s",
            ) as client:
                result = client.sync(Cohort(f"bench-{time.time_ns()}", "Bench"), DelimitedSource(source))
        return {"identifiers": result.adds, "requests": result.requests, "seconds": result.duration_s}
    finally:
        if server is not None:
            server.terminate()
            server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=10_000_000)
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument(
        "--first-sync", type=int, default=200_000, help="identifiers for the first-sync run (0: skip)"
    )
    parser.add_argument("--endpoint", help="server for the first sync (default: the test partner server)")
    parser.add_argument("--partner", default="heap")
    parser.add_argument("--partner-key", default="PK")
    parser.add_argument("--data-import-key", default="DIK")
    parser.add_argument("--phase", choices=["diff", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        measure = measure_diff if args.phase == "diff" else measure_baseline
        print(json.dumps(measure(args.workdir)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        prepare(workdir, args.members, args.changes)
        elapsed = time.perf_counter() - started
        print(f"setup: {args.members:,} members, {args.changes:,} changes ({elapsed:.1f}s)")
        ours = child("diff", workdir)
        base = child("baseline", workdir)
    assert (ours["adds"], ours["removes"]) == (base["adds"], base["removes"]), (ours, base)
    print(
        f"diff (bucketed, state on disk): {ours['seconds']:.2f}s, peak {ours['peak_mb']:.0f} MB, "
        f"+{ours['adds']:,.0f} -{ours['removes']:,.0f}"
    )
    print(f"baseline (Python set difference): {base['seconds']:.2f}s, peak {base['peak_mb']:.0f} MB")
    print(
        f"ratio to baseline: time x{ours['seconds'] / base['seconds']:.2f}, "
        f"memory x{ours['peak_mb'] / base['peak_mb']:.2f}"
    )
    within = ours["seconds"] <= DIFF_BUDGET_S and ours["peak_mb"] <= DIFF_BUDGET_MB
    if args.members >= 10_000_000:
        print(f"budget ({DIFF_BUDGET_S:.0f}s, {DIFF_BUDGET_MB:.0f} MB): {'met' if within else 'MISSED'}")
    if args.first_sync:
        sync = first_sync(
            args.first_sync, args.endpoint, args.partner, (args.partner_key, args.data_import_key)
        )
        rate = sync["identifiers"] / sync["seconds"]
        print(
            f"first sync: {sync['identifiers']:,.0f} identifiers in {sync['requests']:.0f} requests, "
            f"{sync['seconds']:.2f}s, {rate:,.0f} identifiers/s end to end"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
