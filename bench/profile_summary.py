"""Summarise a py-spy ``--format raw`` (collapsed stacks) file: top frames by self and total time.

    python -m bench.profile_summary profile.txt [--top 25] [--filter hub/]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})"


def summarize(path: str, top: int = 25, contains: str | None = None) -> str:
    self_c: Counter = Counter()
    total_c: Counter = Counter()
    n = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            c = int(count)
            frames = [_short(fr) for fr in stack.split(";")]
            # py-spy puts the process/thread as the first frame.
            frames = [fr for fr in frames if not fr.startswith(("process ", "thread "))]
            if not frames:
                continue
            n += c
            self_c[frames[-1]] += c
            for fr in set(frames):
                total_c[fr] += c
    out = [f"{n} samples"]
    out.append("\nself time:")
    for fr, c in self_c.most_common(top):
        if contains and contains not in fr:
            continue
        out.append(f"  {100 * c / n:5.1f}%  {fr}")
    out.append("\ntotal (inclusive) time:")
    for fr, c in total_c.most_common(top * 2):
        if contains and contains not in fr:
            continue
        out.append(f"  {100 * c / n:5.1f}%  {fr}")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--filter")
    args = ap.parse_args()
    print(summarize(args.path, args.top, args.filter))


if __name__ == "__main__":
    main()
