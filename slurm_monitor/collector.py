"""I/O only: run the Slurm commands with a timeout and hand their output to ``snapshot``.

- jobs: ``squeue --all --json``;
- nodes: ``sinfo --json`` on 22.05, ``scontrol show nodes --json`` from 23.02 (where
  ``sinfo --json`` returns grouped records); the release comes from ``scontrol --version``,
  asked once.

Decoding uses orjson when installed: measured on a 22.05-shaped ``squeue --json`` of 100,000
jobs (bench/slurm_parse.py), ``json.loads`` is most of a poll's cost. The parsers keep the
previous poll's records (``cache.JobParser``/``NodeParser``), so only changed records are
rebuilt.

Each collect either returns a full snapshot or raises ``CollectError`` (the command failed,
timed out, or printed something ``snapshot`` rejects): the monitor then sends nothing.
The command runner is injectable: ``mock.MockCluster.run`` answers the same commands, and tests
count the commands through it.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

from slurm_monitor.cache import JobParser, NodeParser
from slurm_monitor.snapshot import Job, Node, SnapshotError

try:
    import orjson
except ImportError:  # pragma: no cover - a pinned requirement; the stdlib decoder still works
    orjson = None  # type: ignore[assignment]

OUTPUT_LIMIT_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


class CollectError(Exception):
    """A poll produced no trustworthy snapshot; ``seconds`` is how long it took."""

    def __init__(self, message: str, seconds: float = 0.0) -> None:
        super().__init__(message)
        self.seconds = seconds


Runner = Callable[[Sequence[str], float], Awaitable[CommandResult]]


async def run_command(argv: Sequence[str], timeout: float) -> CommandResult:
    """Run ``argv`` (no shell); kill it after ``timeout`` seconds. Raises CollectError when it
    cannot start or times out; a non-zero exit is returned, not raised."""
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=OUTPUT_LIMIT_BYTES)
    except OSError as exc:
        raise CollectError(f"cannot run {argv[0]}: {exc}", time.monotonic() - started) from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise CollectError(f"{' '.join(argv)} timed out after {timeout:g}s",
                           time.monotonic() - started) from None
    except asyncio.CancelledError:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return CommandResult(tuple(argv), proc.returncode, out.decode(errors="replace"),
                         err.decode(errors="replace"), time.monotonic() - started)


def decode_json(text: str | bytes) -> Any:
    """The decoded document, or ``text`` itself when it is empty or not JSON (``snapshot`` then
    names the problem, the same way with or without orjson)."""
    if orjson is None or not text.strip():
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def parse_release(text: str) -> tuple[int, int] | None:
    """"slurm 22.05.8" / "slurm-wlm 23.11.4" -> (22, 5)."""
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else None


def nodes_command(release: tuple[int, int]) -> list[str]:
    return ["sinfo", "--json"] if release < (23, 2) else ["scontrol", "show", "nodes", "--json"]


class SlurmCollector:
    """Collects jobs and nodes; ``commands_run`` counts the commands started, by name."""

    def __init__(self, runner: Runner = run_command, timeout: float = 20.0, bin_dir: str = "") -> None:
        self.runner = runner
        self.timeout = timeout
        self.bin_dir = bin_dir
        self.release: tuple[int, int] | None = None
        self.commands_run: Counter[str] = Counter()
        self.last_run: dict[str, tuple[str, float]] = {}  # stream -> (command, seconds)
        self.job_parser = JobParser()
        self.node_parser = NodeParser()

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return [os.path.join(self.bin_dir, argv[0]), *argv[1:]] if self.bin_dir else list(argv)

    async def _run(self, argv: Sequence[str], stream: str = "") -> CommandResult:
        self.commands_run[argv[0]] += 1
        result = await self.runner(self._argv(argv), self.timeout)
        if stream:
            self.last_run[stream] = (" ".join(argv), result.seconds)
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise CollectError(f"{' '.join(argv)} exited {result.returncode}: "
                               f"{detail[-1] if detail else 'no output'}", result.seconds)
        return result

    async def slurm_release(self) -> tuple[int, int]:
        if self.release is None:
            result = await self._run(["scontrol", "--version"])
            release = parse_release(result.stdout)
            if release is None:
                raise CollectError(f"cannot read a Slurm release from {result.stdout.strip()!r}")
            self.release = release
        return self.release

    async def collect_jobs(self) -> dict[str, Job]:
        result = await self._run(["squeue", "--all", "--json"], "jobs")
        try:
            return self.job_parser.parse(decode_json(result.stdout))
        except SnapshotError as exc:
            raise CollectError(f"squeue: {exc}", result.seconds) from None

    async def collect_nodes(self) -> dict[str, Node]:
        argv = nodes_command(await self.slurm_release())
        result = await self._run(argv, "nodes")
        try:
            return self.node_parser.parse(decode_json(result.stdout))
        except SnapshotError as exc:
            raise CollectError(f"{argv[0]}: {exc}", result.seconds) from None
