"""Tiered jobs polls (slurm_monitor.tiers): the state tier's parsing (real 22.05 output and the
simulator), detail only for new or changed jobs, the full cycle, per-release commands."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from slurm_monitor.collector import CollectError, CommandResult, SlurmCollector
from slurm_monitor.mock_scale import ScaleCluster
from slurm_monitor.snapshot import parse_jobs
from slurm_monitor.tiers import JobTiers, StateRows, detail_commands, parse_state_rows, state_command

FIXTURES = Path(__file__).parent / "fixtures"


def test_real_22_05_state_rows_match_its_json():
    """Captured on the one-node 22.05 cluster within a second of each other:
    ``squeue --all -t all -h -o %A|%T|%r|%K`` and ``squeue --all --json``."""
    rows = parse_state_rows((FIXTURES / "squeue-22.05-state-2.txt").read_text())
    jobs = parse_jobs((FIXTURES / "squeue-22.05-tiers-2.json").read_text())
    assert set(rows) == set(jobs)  # -t all: finished jobs are listed, as --json lists them
    assert rows["7"] == "FAILED|NonZeroExitCode|N/A"
    assert rows["6"] == "PENDING|Resources|5"  # the array's waiting record and its last task
    assert rows["9"] == "RUNNING|None|4" and jobs["9"].array_job_id == "6"
    for job_id, row in rows.items():
        assert row.split("|")[0] == jobs[job_id].state


def test_a_broken_state_answer_is_an_error_not_an_empty_queue():
    with pytest.raises(Exception, match="unreadable line"):
        parse_state_rows("slurm_load_jobs error: Unable to contact slurm controller\n")


def test_commands_per_release():
    assert "--only-job-state" not in state_command((22, 5, 8))
    assert "--only-job-state" not in state_command((23, 11, 4))
    assert "--only-job-state" in state_command((23, 11, 5))
    assert detail_commands((22, 5, 8), ["1"]) is None  # 22.05's --json ignores --jobs
    assert detail_commands((23, 2, 7), ["1", "2"]) == [["squeue", "--all", "--json", "--jobs=1"],
                                                       ["squeue", "--all", "--json", "--jobs=2"]]
    assert detail_commands((24, 5, 0), [str(i) for i in range(9)]) is None
    assert detail_commands((24, 5, 1), ["1", "2"]) == [["squeue", "--all", "--json", "--jobs=1,2"]]
    assert len(detail_commands((25, 11, 0), [str(i) for i in range(1200)]) or []) == 3


class Counting:
    """The simulator behind a runner that records every command line."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.calls: list[list[str]] = []

    async def __call__(self, argv, timeout):
        self.calls.append(list(argv))
        return await self.cluster.run(argv, timeout)


async def test_simulator_state_rows_and_detail_only_for_what_changed():
    cluster = ScaleCluster(20, 400, seed=3, churn=0.02)
    runner = Counting(cluster)
    tiers = JobTiers(SlurmCollector(runner=runner, state_tier=True), full_every=50)
    jobs, kind = await tiers.collect()
    assert kind == "full" and len(jobs) == len(cluster.jobs)
    for _ in range(3):
        before_rows = dict(tiers.rows or {})
        previous = dict(jobs)
        runner.calls.clear()
        jobs, kind = await tiers.collect()
        assert kind == "state+detail"
        rows = tiers.rows or {}
        changed = {i for i, row in rows.items() if before_rows.get(i) != row}
        asked = {i for argv in runner.calls if argv[-1].startswith("--jobs=")
                 for i in argv[-1].split("=", 1)[1].split(",")}
        assert asked == changed and 0 < len(asked) < len(rows) // 5
        assert [argv[:2] for argv in runner.calls].count(["squeue", "--only-job-state"]) == 1
        assert not any(argv == ["squeue", "--all", "--json"] for argv in runner.calls)  # no full poll
        for job_id, job in jobs.items():
            if job_id not in changed:
                assert job is previous[job_id]  # unchanged records are the very same objects
        truth = parse_jobs(cluster.squeue_json(set(map(int, rows))))
        # The tiered picture is the full one, except pending reasons: --only-job-state has
        # none, so a reason alone changing waits for the full cycle.
        assert {i: dataclasses.replace(j, reason=None) for i, j in jobs.items()} == \
            {i: dataclasses.replace(j, reason=None) for i, j in truth.items()}


class FieldOnly:
    """25.11-shaped answers where one job's time limit changes and its state does not."""

    def __init__(self) -> None:
        self.limit = 60

    async def __call__(self, argv, timeout):
        from tests.slurm_monitor import shapes

        if argv[:2] == ["scontrol", "--version"]:
            out = "slurm 25.11.0\n"
        elif "--only-job-state" in argv:
            out = "77|RUNNING|N/A\n"
        else:
            job = dict(shapes.JOBS[1], id=77, limit=self.limit)
            out = json.dumps(shapes.squeue_doc("25.11", [job]))
        return CommandResult(tuple(argv), 0, out, "", 0.0)


async def test_the_full_cycle_catches_a_change_the_state_tier_cannot_see():
    runner = FieldOnly()
    tiers = JobTiers(SlurmCollector(runner=runner, state_tier=True), full_every=3)
    jobs, kind = await tiers.collect()
    assert kind == "full" and jobs["77"].time_limit_minutes == 60
    runner.limit = 120  # scontrol update timelimit=2:00:00: same state, same row
    jobs, kind = await tiers.collect()
    assert kind == "state" and jobs["77"].time_limit_minutes == 60  # invisible to the state tier
    jobs, kind = await tiers.collect()
    assert kind == "state"
    jobs, kind = await tiers.collect()
    assert kind == "full" and jobs["77"].time_limit_minutes == 120


async def test_22_05_falls_back_to_a_full_poll_when_anything_changed():
    text = {"state": (FIXTURES / "squeue-22.05-state-1.txt").read_text()}
    json_text = (FIXTURES / "squeue-22.05-tiers-2.json").read_text()
    calls = []

    async def runner(argv, timeout):
        calls.append(list(argv))
        if argv[:2] == ["scontrol", "--version"]:
            return CommandResult(tuple(argv), 0, "slurm-wlm 22.05.8\n", "", 0.0)
        out = text["state"] if "-o" in argv else json_text
        return CommandResult(tuple(argv), 0, out, "", 0.0)

    tiers = JobTiers(SlurmCollector(runner=runner, state_tier=True), full_every=10)
    await tiers.collect()
    calls.clear()
    _, kind = await tiers.collect()  # nothing changed: only the text state tier ran
    assert kind == "state" and calls == [["squeue", "--all", "-t", "all", "-h", "-o", "%A|%T|%r|%K"]]
    text["state"] = (FIXTURES / "squeue-22.05-state-2.txt").read_text()
    calls.clear()
    _, kind = await tiers.collect()
    assert kind == "full" and calls[-1] == ["squeue", "--all", "--json"]


async def test_a_source_without_a_state_tier_gets_full_polls():
    class RestLike:
        """Only SlurmCollector's public methods of old (e.g. a slurmrestd source)."""

        def __init__(self) -> None:
            self.polls = 0

        async def collect_jobs(self):
            self.polls += 1
            return parse_jobs((FIXTURES / "squeue-22.05-tiers-2.json").read_text())

    source = RestLike()
    tiers = JobTiers(source)
    for _ in range(3):
        _, kind = await tiers.collect()
        assert kind == "full"
    assert source.polls == 3


async def test_a_failed_state_tier_changes_nothing():
    cluster = ScaleCluster(5, 50, seed=1)
    failing = {"on": False}

    async def runner(argv, timeout):
        if failing["on"] and "--only-job-state" in argv:
            return CommandResult(tuple(argv), 1, "", "slurm_load_jobs error: timeout", 0.0)
        return await cluster.run(argv, timeout)

    tiers = JobTiers(SlurmCollector(runner=runner, state_tier=True))
    jobs, _ = await tiers.collect()
    failing["on"] = True
    with pytest.raises(CollectError):
        await tiers.collect()
    assert tiers.jobs is jobs



async def test_a_split_full_cycle_sends_the_details_events_before_the_full_json():
    """The monitor's full cycle (``detail_first``): the detail of what the state tier shows
    changed is fetched and its events delivered before the full ``squeue --json`` runs; the
    full answer (the simulator changes nothing between the two commands) then adds no job
    event, so none is sent twice, and the snapshot is the full one."""
    from slurm_monitor.monitor import Monitor
    from tests.slurm_monitor.test_monitor import RecordingSink

    cluster = ScaleCluster(20, 400, seed=5, churn=0.02)
    log: list[tuple[str, str]] = []

    async def runner(argv, timeout):
        log.append(("cmd", " ".join(argv)))
        return await cluster.run(argv, timeout)

    class Sink(RecordingSink):
        async def publish(self, channel, event, data):
            log.append(("event", f"{channel} {event} {data.get('job_id')}"))
            return await super().publish(channel, event, data)

    monitor = Monitor(SlurmCollector(runner=runner, state_tier=True), Sink(), persist=False, full_every=3)
    for _ in range(3):  # the baseline (full), then two state polls
        await monitor.poll_jobs()
    assert monitor.stats["jobs_polls_full"] == 1 and monitor.stats["jobs_polls_state+detail"] == 2
    log.clear()
    await monitor.poll_jobs()  # a full cycle is due
    full_json = log.index(("cmd", "squeue --all --json"))
    detail = [i for i, (kind, text) in enumerate(log) if kind == "cmd" and "--jobs=" in text]
    job_events = [i for i, (kind, text) in enumerate(log) if kind == "event" and text.startswith("jobs ")]
    assert detail and job_events and max(detail) < min(job_events) and max(job_events) < full_json
    assert monitor.stats["jobs_polls_full"] == 2 and not monitor.tiers.full_due
    assert monitor.jobs == parse_jobs(cluster.squeue_json(set(cluster.jobs)))


class Scripted:
    """A 25.11 cluster whose state listing and JSON answers the test sets by hand."""

    def __init__(self) -> None:
        from tests.slurm_monitor import shapes

        self.shapes = shapes
        self.listing: dict[int, str] = {}  # job id -> state (its state-tier row)
        self.answers: dict[int, dict] = {}  # job id -> the record --json gives for it
        self.asked: list[list[str]] = []

    async def __call__(self, argv, timeout):
        if argv[:2] == ["scontrol", "--version"]:
            out = "slurm 25.11.0\n"
        elif "--only-job-state" in argv:
            out = "".join(f"{i}|{state}|N/A\n" for i, state in self.listing.items())
        else:
            wanted = argv[-1].split("=", 1)[1].split(",") if argv[-1].startswith("--jobs=") else None
            if wanted is not None:
                self.asked.append(wanted)
            jobs = [job for i, job in self.answers.items() if wanted is None or str(i) in wanted]
            out = json.dumps(self.shapes.squeue_doc("25.11", jobs))
        return CommandResult(tuple(argv), 0, out, "", 0.0)

    def job(self, job_id: int, state: str) -> None:
        self.listing[job_id] = state
        self.answers[job_id] = dict(self.shapes.JOBS[1], id=job_id, state=state)


async def test_a_job_asked_for_and_not_answered_is_asked_again_while_listed():
    """The listing shows a change, the detail does not answer for that job (it left between
    the two commands, or the answer lagged): the job is out of the picture, and while the
    listing still shows it (the same line: nothing "changed" any more) it is asked for again
    at every poll until the detail answers."""
    cluster = Scripted()
    cluster.job(1, "RUNNING")
    cluster.job(2, "RUNNING")
    tiers = JobTiers(SlurmCollector(runner=cluster, state_tier=True), full_every=100)
    jobs, kind = await tiers.collect()
    assert kind == "full" and set(jobs) == {"1", "2"}
    cluster.listing[2] = "COMPLETED"  # listed as completed, the detail does not answer yet
    record = cluster.answers.pop(2)
    jobs, kind = await tiers.collect()
    assert kind == "state+detail" and set(jobs) == {"1"} and cluster.asked == [["2"]]
    jobs, kind = await tiers.collect()  # same line as last time: asked again all the same
    assert set(jobs) == {"1"} and cluster.asked[-1] == ["2"]
    cluster.answers[2] = dict(record, state="COMPLETED")
    jobs, kind = await tiers.collect()
    assert jobs["2"].state == "COMPLETED" and cluster.asked[-1] == ["2"]
    cluster.asked.clear()
    jobs, kind = await tiers.collect()
    assert kind == "state" and cluster.asked == []  # answered: no longer asked


async def test_a_job_in_the_full_json_but_not_listed_is_gone_at_the_next_state_poll():
    """The full cycle's JSON lists a job the state listing just before it did not (it came
    between the two commands, or is leaving): the next state poll, which does not list it,
    drops it; one the next listing does show is fetched as new."""
    cluster = Scripted()
    cluster.job(1, "RUNNING")
    cluster.answers[2] = dict(cluster.shapes.JOBS[1], id=2, state="RUNNING")  # JSON only
    cluster.answers[3] = dict(cluster.shapes.JOBS[1], id=3, state="PENDING")  # JSON only
    tiers = JobTiers(SlurmCollector(runner=cluster, state_tier=True), full_every=100)
    jobs, _ = await tiers.collect()
    assert set(jobs) == {"1", "2", "3"}
    del cluster.answers[2]
    cluster.listing[3] = "PENDING"
    jobs, kind = await tiers.collect()
    assert set(jobs) == {"1", "3"} and cluster.asked == [["3"]]


@pytest.mark.parametrize("detail_first", [False, True])
async def test_the_changed_ids_name_every_difference_the_full_diff_finds(detail_first):
    """``touched_ids`` lets the monitor's diff look at what the state poll changed only: over
    polls of the simulator with churn, arrays, submissions and departures, and full cycles
    (split as the monitor runs them, or not), the events are the same as comparing every job,
    and the ids the tiers keep for the listing are the listing's."""
    from slurm_monitor.diff import diff_jobs

    cluster = ScaleCluster(30, 1500, seed=11, churn=0.05)
    tiers = JobTiers(SlurmCollector(runner=cluster.run, state_tier=True), full_every=4, detail_first=detail_first)
    previous, _ = await tiers.collect()
    hinted = fulls = 0
    for _ in range(12):
        current, kind = await tiers.collect()
        touched = tiers.touched_ids(previous, current)
        assert (touched is None) == (kind == "full")
        full = diff_jobs(previous, current)
        if touched is not None:
            hinted += 1
            assert len(touched) < len(current) // 4
            assert diff_jobs(previous, current, touched) == full and len(full) > 0
        assert tiers.touched_ids(current, current) is None  # not the pair it made
        if tiers.full_due:
            previous = current
            current, kind = await tiers.collect_full()
            assert tiers.touched_ids(previous, current) is None
        fulls += kind == "full"
        assert tiers._listed == set(parse_state_rows("".join(
            line + "\n" for line in (tiers.rows.lines if isinstance(tiers.rows, StateRows) else ()))))
        assert set(current) == tiers._listed  # the simulator lists what its JSON gives
        previous = current
    assert hinted >= 8 and fulls >= 2


def test_state_rows_compare_by_lines_and_check_what_they_read():
    from slurm_monitor.snapshot import SnapshotError

    before = StateRows("1|RUNNING|N/A\n2|PENDING|N/A\n3|RUNNING|N/A\n")
    after = StateRows("1|RUNNING|N/A\n2|RUNNING|N/A\n4|PENDING|N/A\n")
    added, dropped = after.changed_since(before)
    assert added == {"2": "RUNNING|N/A", "4": "PENDING|N/A"} and dropped == {"2", "3"}
    assert dict(after) == {"1": "RUNNING|N/A", "2": "RUNNING|N/A", "4": "PENDING|N/A"}
    broken = StateRows("1|RUNNING|N/A\nslurm_load_jobs error: Socket timed out\n")
    with pytest.raises(SnapshotError, match="unreadable line"):
        broken.changed_since(before)
    with pytest.raises(SnapshotError, match="unreadable line"):
        len(broken)


async def test_a_broken_listing_fails_the_state_poll_and_keeps_the_picture():
    cluster = Scripted()
    cluster.job(1, "RUNNING")
    tiers = JobTiers(SlurmCollector(runner=cluster, state_tier=True), full_every=100)
    jobs, _ = await tiers.collect()
    real = cluster.__call__

    async def broken(argv, timeout):
        if "--only-job-state" in argv:
            return CommandResult(tuple(argv), 0, "slurm_load_jobs error: Socket timed out\n", "", 0.0)
        return await real(argv, timeout)

    tiers.collector.runner = broken
    with pytest.raises(CollectError, match="unreadable line"):
        await tiers.collect()
    assert tiers.jobs is jobs and set(tiers.rows or {}) == {"1"}
