"""Opt-in trace of a simulated cluster, for benchmarks (``SLURM_MONITOR_MOCK_TRACE=<file>``,
with ``--mock`` only; a real cluster is never traced).

One JSON object per line, appended to the file as it happens (line-buffered, so a reader
tailing the file sees a line before the monitor acts on the answer it describes):

- ``{"k": "cmd", "cmd", "t0", "t1", "cpu0", "cpu1", "rc"}``: every command the monitor ran
  against the simulator: its first two words (``"squeue --only-job-state"``, ``"squeue
  --json"`` with ``"+jobs"`` for a detail fetch by id, ``"scontrol show"``, ``"sdiag"``...),
  wall times (``time.time()``) and the process's CPU seconds (``time.process_time()``, every
  thread) before and after the simulator answered: what the simulator itself cost is
  ``cpu1 - cpu0``, so a reader can leave it out of the monitor's own CPU;
- ``{"k": "step", "t", "changes": [[job_id, state], ...]}``: one step of ``mock_scale``'s
  churn (which happens inside the listing command that reveals it), each job it changed with
  its state after the change (``"REMOVED"``: purged);
- ``{"k": "poll", "stream", "t", "cpu", "msg"}``: the end of a jobs or nodes poll (the
  monitor's own "jobs poll: ..." / "nodes poll: ..." log line, caught by a logging handler).

Nothing here changes what the monitor does; without the variable none of it is installed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import IO, Any, Awaitable, Callable, Sequence

from slurm_monitor.collector import CommandResult

Runner = Callable[[Sequence[str], float], Awaitable[CommandResult]]


def command_kind(argv: Sequence[str]) -> str:
    """A short, fixed name for a command line (its ids and formats left out)."""
    words = [argv[0].rsplit("/", 1)[-1], *argv[1:]]
    if words[0] == "squeue":
        for flag in ("--only-job-state", "--start", "--json"):
            if flag in words:
                by_id = flag == "--json" and any(w.startswith("--jobs=") for w in words)
                return f"squeue {flag}" + ("+jobs" if by_id else "")
        return "squeue " + " ".join(w for w in words[1:3] if w.startswith("-"))
    return " ".join(words[:2]) if len(words) > 1 and not words[1].startswith("-") else words[0]


class Trace:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.handler = _PollEnds(self)

    @classmethod
    def open(cls, path: str) -> "Trace":
        return cls(open(path, "a", buffering=1, encoding="utf-8"))

    def write(self, **record: Any) -> None:
        self.out.write(json.dumps(record, separators=(",", ":")) + "\n")

    def attach(self, cluster: Any) -> Runner:
        """Trace ``cluster`` (its steps, when it has them) and the monitor's poll ends;
        returns the runner to hand the collector instead of ``cluster.run``."""
        if hasattr(cluster, "on_step"):
            cluster.on_step = lambda changes: self.write(k="step", t=time.time(), changes=changes)
        logging.getLogger("slurm_monitor").addHandler(self.handler)

        async def run(argv: Sequence[str], timeout: float) -> CommandResult:
            t0, cpu0 = time.time(), time.process_time()
            result = await cluster.run(argv, timeout)
            self.write(k="cmd", cmd=command_kind(argv), t0=t0, t1=time.time(), cpu0=cpu0,
                       cpu1=time.process_time(), rc=result.returncode)
            return result

        return run

    def detach(self) -> None:
        logging.getLogger("slurm_monitor").removeHandler(self.handler)


class _PollEnds(logging.Handler):
    """Records the end of each jobs/nodes poll: the monitor logs one line there."""

    def __init__(self, trace: Trace) -> None:
        super().__init__(logging.INFO)
        self.trace = trace

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        for stream in ("jobs", "nodes"):
            if message.startswith(f"{stream} poll: "):
                self.trace.write(k="poll", stream=stream, t=record.created, cpu=time.process_time(),
                                 msg=record.getMessage())
