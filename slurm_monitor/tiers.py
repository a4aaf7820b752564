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
from typing import Any, Callable, Iterator, Mapping, Sequence

from slurm_monitor.snapshot import Job, SnapshotError

logger = logging.getLogger("slurm_monitor")

FULL_EVERY = 12  # state polls per full cycle: 60 s at the default 5 s
DETAIL_BATCH = 500  # ids per ``--jobs=`` (argv stays a few KB)
SINGLE_ID_DETAIL_MAX = 8  # 23.02-24.05.0: one call per id up to this many, then one full poll

def _split(line: str) -> tuple[str, str]:
    job_id, sep, rest = line.partition("|")
    if not sep or not job_id.isdigit():
        raise SnapshotError(f"state tier: unreadable line {line[:80]!r}")
    return job_id, rest


class StateRows(Mapping[str, str]):
    """One state-tier answer, read as {job id: rest of its line}.

    Kept as the SET of its lines, so two answers are compared with set operations in C
    (``changed_since``): at 100,000 jobs ~30 ms, where a dict per answer and a per-job
    comparison cost ~0.1 s of every 5 s poll, all before the first event could leave.
    The mapping is built only where every id is needed (a full cycle; tests). A line is
    checked (SnapshotError, so a broken answer never looks like "every job ended") when it is
    read: every line of the mapping, and at each poll every line that is new or changed
    (the others were checked when they were new)."""

    __slots__ = ("lines", "_rows")

    def __init__(self, text: str) -> None:
        lines = set(text.split("\n"))
        lines.discard("")
        self.lines = lines
        self._rows: dict[str, str] | None = None

    def _mapping(self) -> dict[str, str]:
        if self._rows is None:
            self._rows = dict(_split(line) for line in self.lines)
        return self._rows

    def __getitem__(self, job_id: str) -> str:
        return self._mapping()[job_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def changed_since(self, before: "StateRows") -> tuple[dict[str, str], set[str]]:
        """({job id: line} of every line not in ``before``: a new job or a changed row; the
        ids of ``before``'s lines that are not in this answer: changed or gone)."""
        added = dict(_split(line) for line in self.lines - before.lines)
        return added, {line.partition("|")[0] for line in before.lines - self.lines}


def parse_state_rows(text: str) -> StateRows:
    """``squeue -h -o %A|%T|...`` -> its rows, every line checked now (SnapshotError)."""
    rows = StateRows(text)
    rows._mapping()
    return rows


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
        self.rows: StateRows | None = None
        self.since_full = 0
        self._unseen: set[str] = set()  # listed, not in ``jobs``: asked for at the next state poll
        self._orphans: set[str] = set()  # in ``jobs`` (a full answer), not listed: gone next poll
        # (before, after, ids) of the last state poll: the ids diff_jobs must look at.
        self.touched: tuple[dict[str, Job], dict[str, Job], frozenset[str]] | None = None
        self._listed: set[str] = set()  # the ids of ``_listed_rows``, kept up to date poll by poll
        self._listed_rows: StateRows | None = None
        self.supported = callable(getattr(collector, "collect_job_states", None))
        # ``detail_first``: a full cycle is split (``full_due``, ``collect_full``), see ``collect``.
        self.detail_first = detail_first
        self._full_rows: StateRows | None = None

    @property
    def full_due(self) -> bool:
        """``collect`` answered the first half of a split full cycle: call ``collect_full``."""
        return self._full_rows is not None

    async def collect(self, listed: Callable[[], None] | None = None) -> tuple[dict[str, Job], str]:
        """With ``detail_first``, a full cycle's ``collect`` answers like a state poll (the
        detail of what the state tier shows changed, so those events can leave at once) and
        sets ``full_due``; ``collect_full`` then runs the full JSON, diffed by the caller
        against what it just published (the same rule as two polls in a row: nothing twice,
        nothing lost). The state rows of this call stay the baseline either way. ``listed`` is
        called as soon as the state listing has arrived (the monitor holds the garbage
        collector off from then until the events are out: ``gc_hold``)."""
        rows = await self.collector.collect_job_states() if self.supported else None
        if rows is None:
            self.supported = False
        elif listed is not None:
            listed()
        previous, before = self.jobs, self.rows
        due = self.since_full + 1 >= self.full_every
        if rows is None or previous is None or before is None or (due and not self.detail_first):
            return await self._full(rows)
        try:
            added, dropped = rows.changed_since(before)
        except SnapshotError as exc:
            raise _collect_error(exc) from None
        gone = (dropped | self._orphans) - added.keys()  # no longer listed
        wanted = sorted(added.keys() | (self._unseen - gone), key=int)
        kind = "state"
        if wanted:
            details = await self.collector.collect_job_details(wanted)
            if details is None:  # this release cannot narrow the JSON: a full poll
                return await self._full(rows)
            kind = "state+detail"
        else:
            details = {}
        jobs = dict(previous)  # a copy in C; then only what changed
        for job_id in gone:
            jobs.pop(job_id, None)
        jobs.update(details)
        self._unseen = {job_id for job_id in wanted if job_id not in details}
        for job_id in self._unseen:  # asked for, not answered: it left the queue in between
            jobs.pop(job_id, None)
        self._orphans = set()
        self.touched = (previous, jobs, frozenset(gone.union(wanted, details)))  # details: an array id lists its tasks
        self._listed.difference_update(dropped)
        self._listed.update(added)
        self.jobs, self.rows = jobs, rows
        self._listed_rows = rows
        if due:
            self._full_rows = rows
        else:
            self.since_full += 1
        return jobs, kind

    def touched_ids(self, previous: dict[str, Job] | None, current: dict[str, Job]) -> frozenset[str] | None:
        """The ids that can differ between ``previous`` and ``current`` when they are this
        object's last state poll's before and after (so ``diff_jobs`` looks at those only),
        else None (a full poll, or snapshots this object did not make)."""
        if self.touched is None or self.touched[0] is not previous or self.touched[1] is not current:
            return None
        return self.touched[2]

    async def collect_full(self) -> tuple[dict[str, Job], str]:
        """The second half of a split full cycle (``full_due``). If it fails, the next
        ``collect`` starts a full cycle again."""
        rows, self._full_rows = self._full_rows, None
        return await self._full(rows)

    async def _full(self, rows: StateRows | None) -> tuple[dict[str, Job], str]:
        jobs = await self.collector.collect_jobs()
        self.jobs, self.rows, self.since_full, self.touched = jobs, rows, 0, None
        # The invariant the next state poll relies on: a listed id missing from ``jobs`` is
        # "unseen" (asked for again), a job without a line is an "orphan" (gone unless listed).
        if rows is None or rows is not self._listed_rows:  # else: the rows the last state poll read
            try:  # (dict keys: set operations in C; a Mapping's own keys view is Python)
                self._listed = set(rows._mapping()) if rows is not None else set()
            except SnapshotError as exc:  # the JSON stands; this listing is no baseline: the next poll is full
                logger.warning("jobs poll: %s", exc)
                self._listed, self.rows = set(), None
        self._unseen = self._listed - jobs.keys()
        self._orphans = jobs.keys() - self._listed
        self._listed_rows = self.rows
        return jobs, "full"


def _collect_error(exc: SnapshotError) -> Exception:
    # Imported here: collector imports this module. A CollectError, like every failed command,
    # so the monitor counts the poll as failed and keeps the previous picture.
    from slurm_monitor.collector import CollectError

    return CollectError(f"squeue: {exc}")
