"""EXPERIMENT (bench only): the hub under daphne with tracemalloc on; SIGUSR1 writes a
snapshot to $BENCH_TRACEMALLOC_DIR/snap-<n>.pickle. Compare two snapshots (before/after N
idle connections) with ``python -m bench.experiments.hub_tracemalloc diff A B N``.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc


def main() -> None:
    tracemalloc.start(8)
    out = os.environ.get("BENCH_TRACEMALLOC_DIR", "/tmp")
    count = [0]

    def dump(signum, frame):
        count[0] += 1
        tracemalloc.take_snapshot().dump(os.path.join(out, f"snap-{count[0]}.pickle"))

    signal.signal(signal.SIGUSR1, dump)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realtime_project.settings")
    from hub.server import main as hub_main

    hub_main()


def diff(a: str, b: str, n: int, top: int = 25) -> None:
    old, new = tracemalloc.Snapshot.load(a), tracemalloc.Snapshot.load(b)
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    old, new = old.filter_traces(filters), new.filter_traces(filters)
    total = sum(s.size_diff for s in new.compare_to(old, "filename"))
    print(f"traced Python heap growth: {total / n:.0f} bytes per connection over {n}")
    print("\nby file:")
    for s in new.compare_to(old, "filename")[:top]:
        print(f"  {s.size_diff / n:8.0f} B/conn  {s.count_diff / n:6.1f} objs/conn  {s.traceback[0].filename}")
    print("\nby line:")
    for s in new.compare_to(old, "lineno")[:top]:
        fr = s.traceback[0]
        print(f"  {s.size_diff / n:8.0f} B/conn  {fr.filename}:{fr.lineno}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()
