"""I/O only: run the Slurm commands with a timeout and hand their output to ``snapshot``.

- jobs: ``squeue --all --json``; the state tier (``collect_job_states``) and the detail of
  a few jobs (``collect_job_details``) with the commands ``tiers`` picks per release;
- ``sdiag`` (``collect_sdiag``): the scheduler's load, for the cadence;
- accounting (history): ``sacct --json --allusers -j id1,id2,...``, one batched call
  (``sacct.sacct_command``), parsed by ``sacct.parse_sacct``; after a restart, once, the jobs
  that ended in a time window (``sacct.gap_command``: ``-S``/``-E`` and the ended states);
- watched jobs (``interest``): ``squeue --start`` for the pending, ``sstat`` for the running,
  one call each per cycle (``progress`` builds and parses them);
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
from typing import Any, Awaitable, Callable, Mapping, Sequence

from slurm_monitor import tiers
from slurm_monitor.cache import JobParser, NodeParser, fingerprint
from slurm_monitor.gc_hold import gc_paused
from slurm_monitor.sacct import (
    Accounting,
    exit_codes_command,
    gap_command,
    gap_exit_codes_command,
    parse_exit_codes,
    parse_sacct,
    sacct_command,
    with_exit_codes,
)
from slurm_monitor.progress import StepUsage, parse_sstat, parse_start, sstat_command, start_command
from slurm_monitor.slices import iter_records
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


async def run_command(argv: Sequence[str], timeout: float, env: Mapping[str, str] | None = None) -> CommandResult:
    """Run ``argv`` (no shell); kill it after ``timeout`` seconds. Raises CollectError when it
    cannot start or times out; a non-zero exit is returned, not raised. ``env``: variables
    set on top of this process's environment (``--slurm-conf`` sets SLURM_CONF)."""
    started = time.monotonic()
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=OUTPUT_LIMIT_BYTES,
            env={**os.environ, **env} if env else None)
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
    returncode = await proc.wait()  # already exited (communicate waits): this only reads it
    return CommandResult(tuple(argv), returncode, out.decode(errors="replace"),
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


def parse_jobs_output(parser: JobParser, text: str) -> dict[str, Job]:
    """The collector's way from ``squeue --json`` text to records (bench/slurm_parse.py times
    it): with orjson, a big document is decoded a slice of records at a time (``slices``)."""
    with gc_paused():
        if orjson is None:
            return parser.parse(decode_json(text))
        return parser.parse_records(iter_records(text, "jobs", orjson.loads))


def parse_nodes_output(parser: NodeParser, text: str) -> dict[str, Node]:
    with gc_paused():
        return parser.parse(decode_json(text))


def fast_fingerprint(record: Mapping[str, Any], fields: tuple[str, ...]) -> int:
    """``cache.fingerprint``'s contract, serialised by orjson in C: the values of 23.02+ records
    are number objects, which the pure version freezes one by one in Python."""
    try:
        return hash(orjson.dumps(list(map(record.get, fields))))
    except (TypeError, orjson.JSONEncodeError):  # e.g. an int beyond 64 bits
        return fingerprint(record, fields)


def parse_release(text: str) -> tuple[int, int] | None:
    """"slurm 22.05.8" / "slurm-wlm 23.11.4" -> (22, 5)."""
    full = parse_full_release(text)
    return full[:2] if full else None


def parse_full_release(text: str) -> tuple[int, int, int] | None:
    """"slurm 23.11.5" -> (23, 11, 5); a missing micro reads 0. The state tier's option came
    in a micro release (23.11.5)."""
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)) if match else None


def parse_sdiag(text: str) -> dict[str, int]:
    """The load figures of ``sdiag``'s text: server threads, agent queue, last main cycle (µs).
    Missing lines are absent (the text is stable from 22.05 to 25.11)."""
    out = {}
    for key, pattern in (("server_threads", r"Server thread count:\s+(\d+)"),
                         ("agent_queue", r"Agent queue size:\s+(\d+)"),
                         ("last_cycle_us", r"Main schedule statistics.*?Last cycle:\s+(\d+)")):
        match = re.search(pattern, text, re.S)
        if match:
            out[key] = int(match.group(1))
    return out


def nodes_command(release: tuple[int, int]) -> list[str]:
    return ["sinfo", "--json"] if release < (23, 2) else ["scontrol", "show", "nodes", "--json"]


class SlurmCollector:
    """Collects jobs and nodes; ``commands_run`` counts the commands started, by name."""

    def __init__(self, runner: Runner = run_command, timeout: float = 20.0, bin_dir: str = "",
                 state_tier: bool = False, sdiag: bool = False) -> None:
        self.runner = runner
        self.sdiag = sdiag  # off: ``collect_sdiag`` answers None (the cadence follows command times)
        self.state_tier = state_tier  # off: every jobs poll is a full ``squeue --json``
        self.timeout = timeout
        self.bin_dir = bin_dir
        self.release: tuple[int, int] | None = None
        self.full_release: tuple[int, int, int] | None = None
        self.commands_run: Counter[str] = Counter()
        self.last_run: dict[str, tuple[str, float]] = {}  # stream -> (command, seconds)
        self.stream_seconds: dict[str, float] = {}  # stream -> seconds in its commands, summed
        print_ = fast_fingerprint if orjson is not None else fingerprint
        self.job_parser = JobParser(print_)
        self.node_parser = NodeParser(print_)

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return [os.path.join(self.bin_dir, argv[0]), *argv[1:]] if self.bin_dir else list(argv)

    async def _run(self, argv: Sequence[str], stream: str = "") -> CommandResult:
        self.commands_run[argv[0]] += 1
        try:
            result = await self.runner(self._argv(argv), self.timeout)
        except CollectError as exc:
            self.stream_seconds[stream] = self.stream_seconds.get(stream, 0.0) + exc.seconds
            raise
        if stream:
            self.last_run[stream] = (" ".join(argv), result.seconds)
            self.stream_seconds[stream] = self.stream_seconds.get(stream, 0.0) + result.seconds
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()
            raise CollectError(f"{' '.join(argv)} exited {result.returncode}: "
                               f"{detail[-1] if detail else 'no output'}", result.seconds)
        return result

    async def slurm_release(self) -> tuple[int, int]:
        if self.release is None:
            result = await self._run(["scontrol", "--version"])
            release = parse_full_release(result.stdout)
            if release is None:
                raise CollectError(f"cannot read a Slurm release from {result.stdout.strip()!r}")
            self.release, self.full_release = release[:2], release
        return self.release

    async def collect_job_states(self) -> tiers.StateRows | None:
        """The state tier: {job id: state row} (``tiers.state_command``); None when off. Its
        lines are checked as ``JobTiers`` reads them (``tiers.StateRows``)."""
        if not self.state_tier:
            return None
        await self.slurm_release()
        assert self.full_release is not None
        result = await self._run(tiers.state_command(self.full_release), "jobs")
        return tiers.StateRows(result.stdout)

    async def collect_job_details(self, job_ids: Sequence[str]) -> dict[str, Job] | None:
        """The records of ``job_ids`` (those still queued), or None when this release cannot
        narrow ``squeue --json`` to them (``tiers.detail_commands``)."""
        await self.slurm_release()
        assert self.full_release is not None
        commands = tiers.detail_commands(self.full_release, list(job_ids))
        if commands is None:
            return None
        jobs: dict[str, Job] = {}
        for argv in commands:
            result = await self._run(argv, "jobs")
            try:
                with gc_paused():
                    jobs.update(self.job_parser.parse(decode_json(result.stdout), partial=True))
            except SnapshotError as exc:
                raise CollectError(f"squeue: {exc}", result.seconds) from None
        return jobs

    async def collect_sdiag(self) -> dict[str, int] | None:
        if not self.sdiag:
            return None
        return parse_sdiag((await self._run(["sdiag"], "sdiag")).stdout)

    async def collect_jobs(self) -> dict[str, Job]:
        result = await self._run(["squeue", "--all", "--json"], "jobs")
        try:
            return parse_jobs_output(self.job_parser, result.stdout)
        except SnapshotError as exc:
            raise CollectError(f"squeue: {exc}", result.seconds) from None

    async def collect_nodes(self) -> dict[str, Node]:
        argv = nodes_command(await self.slurm_release())
        result = await self._run(argv, "nodes")
        try:
            return parse_nodes_output(self.node_parser, result.stdout)
        except SnapshotError as exc:
            raise CollectError(f"{argv[0]}: {exc}", result.seconds) from None

    async def collect_accounting(self, job_ids: Sequence[str]) -> dict[str, Accounting]:
        """What ``sacct`` knows of these jobs (one call); ids it does not know are absent."""
        found = await self._sacct(sacct_command(job_ids))
        return await self._fill_exit_codes(found, exit_codes_command)

    async def collect_ended(self, start: float, end: float) -> dict[str, Accounting]:
        """Every job (everyone's) that ended between ``start`` and ``end`` (Unix seconds), in
        one ``sacct`` call (``sacct.gap_command``)."""
        found = await self._sacct(gap_command(start, end))
        return await self._fill_exit_codes(found, lambda _ids: gap_exit_codes_command(start, end))

    async def _sacct(self, argv: list[str]) -> dict[str, Accounting]:
        result = await self._run(argv, "sacct")
        try:
            with gc_paused():
                return parse_sacct(decode_json(result.stdout))
        except SnapshotError as exc:
            raise CollectError(f"sacct: {exc}", result.seconds) from None

    async def _fill_exit_codes(self, found: dict[str, Accounting],
                               command: Callable[[list[str]], list[str]]) -> dict[str, Accounting]:
        """22.05's JSON lost the exit codes of jobs that exited non-zero (``sacct.parse_record``):
        one text call (``command(ids)``) for them."""
        lost = [job_id for job_id, a in found.items() if a.exit_code is None and a.end_time]
        if lost and await self.slurm_release() < (23, 2):
            codes = await self._run(command(lost))
            found = with_exit_codes(found, parse_exit_codes(codes.stdout))
        return found

    async def collect_start_estimates(self, job_ids: Sequence[str]) -> dict[str, int | None]:
        """The scheduler's start estimate of these pending jobs (one ``squeue --start``), by
        the id ``squeue`` prints ("10_1" for an array task); None: no estimate yet. When none
        of the ids is in the queue any more, squeue exits 1: that is an empty answer."""
        try:
            result = await self._run(start_command(job_ids), "start")
        except CollectError as exc:
            if "Invalid job id" in str(exc):
                return {}
            raise
        return parse_start(result.stdout)

    async def collect_step_usage(self, job_ids: Sequence[str]) -> dict[str, StepUsage]:
        """What the running steps of these jobs used so far (one ``sstat``); jobs without a
        readable step (none running, no accounting gathered) are absent."""
        return parse_sstat((await self._run(sstat_command(job_ids), "sstat")).stdout)
