"""Tiered job polling: a cheap state tier every jobs interval, the JSON detail only for jobs
that are new or changed, and a full JSON cycle every ``full_every`` state polls.

Which commands, per release (read in SchedMD's sources, tags slurm-XX-YY-Z-1):

- state tier, 23.11.5 on: ``squeue --only-job-state -t all -h -o %A|%T|%K``. The option came
  in 23.11.5 (CHANGELOG/slurm-23.11.md "Add --only-job-state"; src/squeue/opts.c has no
  OPT_LONG_ONLY_JOB_STATE at 23-11-4-1). It asks slurmctld for REQUEST_JOB_STATE, a small
  RPC that skips packing the job table (and, with ``enable_job_state_cache``, skips its
  lock), instead of REQUEST_JOB_INFO. It rejects ``--all`` (``_check_only_state()``) and
  carries no reason: pending-reason changes arrive with the full cycle.
- state tier, 22.05 to 23.11.4: ``squeue --all -t all -h -o %A|%T|%r|%K``: the same
  REQUEST_JOB_INFO RPC as ``--json``, so slurmctld's share is unchanged, but squeue prints four
  short columns instead of serialising every field through data_parser, and the monitor
  splits lines instead of decoding JSON (measured in docs/benchmarks.md). ``-t all``:
  without it squeue hides finished jobs, which ``--json`` lists (seen on 22.05).
- detail, 24.05.1 on: ``squeue --all --json --jobs=<ids>`` in batches (CHANGELOG 24.05.1
  "Fix filtering arguments being ignored when using squeue --json";
  ``squeue_filter_jobs_for_json()`` from 24-05-1-1).
- detail, 23.02 to 24.05.0: ``--json`` ignores a list of ids but one id is loaded alone
  (``slurm_load_job()`` when ``params.job_id`` is set): one call per id up to
  ``SINGLE_ID_DETAIL_MAX`` ids, else one full ``squeue --all --json``.
- detail, 22.05: ``squeue --json`` ignores every filter (src/squeue/data.c ``dump_data()``
  calls the openapi handler with no query; ``squeue --json --jobs=1`` lists every job here):
  a change means one full ``squeue --all --json``. The text formats were tried as a detail
  source and rejected: 22.05's ``-O`` has no requested-TRES field (memory comes from
  ``tres_req_str``) and prints ``num_cpus`` where the JSON says NO_VAL, so records would
  differ between the tiers.

%A is the job's own id (an array task's too), the key of ``Job``; %K is the array task id,
or the pending tasks ("3-5") of an array's waiting record, so a task leaving that record
changes its row. Any row difference (state, reason, tasks) fetches that job's detail; a
job missing from the state tier left the queue (no detail needed).

A source without a state tier (no ``collect_job_states``, or it returns None) gets full
polls, as before tiering.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from slurm_monitor.snapshot import Job, SnapshotError

logger = logging.getLogger("slurm_monitor")

FULL_EVERY = 12  # state polls per full cycle: 60 s at the default 5 s
DETAIL_BATCH = 500  # ids per ``--jobs=`` (argv stays a few KB)
SINGLE_ID_DETAIL_MAX = 8  # 23.02-24.05.0: one call per id up to this many, then one full poll

Rows = dict[str, str]  # job id -> the rest of its state-tier line


def state_command(release: tuple[int, int, int]) -> list[str]:
    if release >= (23, 11, 5):
        return ["squeue", "--only-job-state", "-t", "all", "-h", "-o", "%A|%T|%K"]
    return ["squeue", "--all", "-t", "all", "-h", "-o", "%A|%T|%r|%K"]


def detail_commands(release: tuple[int, int, int], ids: Sequence[str]) -> list[list[str]] | None:
    """The commands that fetch the JSON of ``ids`` alone, or None: this release cannot
    narrow ``squeue --json``; a full poll it is."""
    if release >= (24, 5, 1):
        return [["squeue", "--all", "--json", "--jobs=" + ",".join(ids[i:i + DETAIL_BATCH])]
                for i in range(0, len(ids), DETAIL_BATCH)]
    if release >= (23, 2, 0) and len(ids) <= SINGLE_ID_DETAIL_MAX:
        return [["squeue", "--all", "--json", "--jobs=" + job_id] for job_id in ids]
    return None


def parse_state_rows(text: str) -> Rows:
    """``squeue -h -o %A|%T|...`` -> {job id: rest of the line}. Raises SnapshotError on a line
    without an id (a broken answer must never look like "every job ended")."""
    rows: Rows = {}
    for line in text.splitlines():
        if not line:
            continue
        job_id, sep, rest = line.partition("|")
        if not sep or not job_id.isdigit():
            raise SnapshotError(f"state tier: unreadable line {line[:80]!r}")
        rows[job_id] = rest
    return rows


class JobTiers:
    """``await collect()`` -> (jobs, kind): the full picture after this poll, and ``"full"``,
    ``"state"`` or ``"state+detail"``. Unchanged jobs are the previous poll's very objects,
    so ``diff_jobs`` skips them by identity.

    Baseline: the state rows of the last successful poll. A full cycle runs the state tier
    first, then the full JSON, so a change between the two commands still differs from the
    baseline at the next state poll and is fetched then (nothing can slip between tiers)."""

    def __init__(self, collector: Any, full_every: int = FULL_EVERY, detail_first: bool = False) -> None:
        self.collector = collector
        self.full_every = max(1, full_every)
        self.jobs: dict[str, Job] | None = None
        self.rows: Rows | None = None
        self.since_full = 0
        self.supported = callable(getattr(collector, "collect_job_states", None))
        # ``detail_first``: a full cycle is split (``full_due``, ``collect_full``), see ``collect``.
        self.detail_first = detail_first
        self._full_rows: Rows | None = None

    @property
    def full_due(self) -> bool:
        """``collect`` answered the first half of a split full cycle: call ``collect_full``."""
        return self._full_rows is not None

    async def collect(self) -> tuple[dict[str, Job], str]:
        """With ``detail_first``, a full cycle's ``collect`` answers like a state poll (the
        detail of what the state tier shows changed, so those events can leave at once) and
        sets ``full_due``; ``collect_full`` then runs the full JSON, diffed by the caller
        against what it just published (the same rule as two polls in a row: nothing twice,
        nothing lost). The state rows of this call stay the baseline either way."""
        rows = await self.collector.collect_job_states() if self.supported else None
        if rows is None:
            self.supported = False
        previous, before = self.jobs, self.rows
        due = self.since_full + 1 >= self.full_every
        if rows is None or previous is None or before is None or (due and not self.detail_first):
            return await self._full(rows)
        wanted = [job_id for job_id, row in rows.items() if before.get(job_id) != row or job_id not in previous]
        kind = "state"
        if wanted:
            details = await self.collector.collect_job_details(wanted)
            if details is None:  # this release cannot narrow the JSON: a full poll
                return await self._full(rows)
            kind = "state+detail"
        else:
            details = {}
        jobs = {job_id: previous[job_id] for job_id in rows if job_id in previous}
        jobs.update(details)
        for job_id in wanted:  # asked for, not answered: it left the queue in between
            if job_id not in details:
                jobs.pop(job_id, None)
        self.jobs, self.rows = jobs, rows
        if due:
            self._full_rows = rows
        else:
            self.since_full += 1
        return jobs, kind

    async def collect_full(self) -> tuple[dict[str, Job], str]:
        """The second half of a split full cycle (``full_due``). If it fails, the next
        ``collect`` starts a full cycle again."""
        rows, self._full_rows = self._full_rows, None
        return await self._full(rows)

    async def _full(self, rows: Rows | None) -> tuple[dict[str, Job], str]:
        jobs = await self.collector.collect_jobs()
        self.jobs, self.rows, self.since_full = jobs, rows, 0
        return jobs, "full"
