"""diff: (previous, current) -> exactly the events and notifications expected."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slurm_monitor import snapshot as s
from slurm_monitor.diff import ResourceMark, diff_jobs, diff_nodes
from tests.slurm_monitor.test_snapshot import EXPECTED_JOBS, EXPECTED_NODES

FIXTURES = Path(__file__).parent / "fixtures"
BASE = EXPECTED_JOBS["102"]  # bob's running job


def job(state: str, job_id: str = "102", **changes) -> s.Job:
    return dataclasses.replace(BASE, job_id=job_id, state=state, **changes)


def summary(changes):
    pubs = [(p.event, p.data.get("job_id") or p.data.get("node"), p.data.get("previous_state"),
             p.data.get("state")) for p in changes.publications]
    notes = [(n.type, n.data.get("job_id") or n.data.get("node")) for n in changes.notifications]
    return pubs, notes


JOB_CASES = [
    # name, previous, current, publications, notifications
    ("first poll is the baseline", None, {"102": job("RUNNING")}, [], []),
    ("no change", {"102": job("RUNNING")}, {"102": job("RUNNING")}, [], []),
    ("submitted", {}, {"102": job("PENDING")}, [("job_submitted", "102", None, "PENDING")], []),
    ("submitted and already running", {}, {"102": job("RUNNING")},
     [("job_submitted", "102", None, "RUNNING")], []),
    ("submitted and already failed", {}, {"102": job("FAILED", exit_code=3)},
     [("job_submitted", "102", None, "FAILED")], [("job_failed", "102")]),
    ("starts", {"102": job("PENDING")}, {"102": job("RUNNING")},
     [("job_state_changed", "102", "PENDING", "RUNNING")], []),
    ("completing", {"102": job("RUNNING")}, {"102": job("COMPLETING")},
     [("job_state_changed", "102", "RUNNING", "COMPLETING")], []),
    ("completed", {"102": job("COMPLETING")}, {"102": job("COMPLETED", exit_code=0)},
     [("job_state_changed", "102", "COMPLETING", "COMPLETED")], [("job_completed", "102")]),
    ("failed", {"102": job("RUNNING")}, {"102": job("FAILED", exit_code=3)},
     [("job_state_changed", "102", "RUNNING", "FAILED")], [("job_failed", "102")]),
    ("cancelled while pending", {"102": job("PENDING")}, {"102": job("CANCELLED")},
     [("job_state_changed", "102", "PENDING", "CANCELLED")], [("job_cancelled", "102")]),
    ("timed out", {"102": job("RUNNING")}, {"102": job("TIMEOUT")},
     [("job_state_changed", "102", "RUNNING", "TIMEOUT")], [("job_timeout", "102")]),
    ("preempted: event, no notification", {"102": job("RUNNING")}, {"102": job("PREEMPTED")},
     [("job_state_changed", "102", "RUNNING", "PREEMPTED")], []),
    ("purged: removed, never 'ended'", {"102": job("RUNNING")}, {},
     [("job_removed", "102", None, "RUNNING")], []),
    ("same final state again: nothing", {"102": job("COMPLETED")}, {"102": job("COMPLETED")}, [], []),
    ("other fields changing are not state changes", {"102": job("PENDING", reason="Priority")},
     {"102": job("PENDING", reason="Resources")}, [], []),
    # 23.11+: the base state is final while Slurm still runs the epilog: report it now, once.
    ("ended while completing (23.11+)", {"102": job("RUNNING")},
     {"102": job("CANCELLED", state_flags=("COMPLETING",), signal=15, exit_code=0)},
     [("job_state_changed", "102", "RUNNING", "CANCELLED")], [("job_cancelled", "102")]),
    ("the COMPLETING flag clearing: nothing", {"102": job("COMPLETED", state_flags=("COMPLETING",))},
     {"102": job("COMPLETED")}, [], []),
    ("purged while still completing: already told", {"102": job("FAILED", state_flags=("COMPLETING",))},
     {}, [("job_removed", "102", None, "FAILED")], []),
    ("configuring done: no event", {"102": job("RUNNING", state_flags=("CONFIGURING",))},
     {"102": job("RUNNING")}, [], []),
    ("ordered by numeric job id", {},
     {"10": job("PENDING", "10"), "9": job("PENDING", "9"), "100": job("PENDING", "100")},
     [("job_submitted", "9", None, "PENDING"), ("job_submitted", "10", None, "PENDING"),
      ("job_submitted", "100", None, "PENDING")], []),
]


@pytest.mark.parametrize("name, previous, current, pubs, notes", JOB_CASES, ids=[c[0] for c in JOB_CASES])
def test_diff_jobs(name, previous, current, pubs, notes):
    assert summary(diff_jobs(previous, current)) == (pubs, notes)


def test_a_job_purged_while_completing_got_its_terminal_event_and_notification_first():
    # The three polls of issue 13, in 23.11's shape: running, [FAILED, COMPLETING], purged.
    running = {"102": job("RUNNING")}
    completing = {"102": job("FAILED", state_flags=("COMPLETING",), exit_code=3)}
    first, second = diff_jobs(running, completing), diff_jobs(completing, {})
    assert summary(first) == ([("job_state_changed", "102", "RUNNING", "FAILED")], [("job_failed", "102")])
    assert first.publications[0].data["state_flags"] == ["COMPLETING"]
    assert first.notifications[0].data["exit_code"] == 3
    assert summary(second) == ([("job_removed", "102", None, "FAILED")], [])


def test_release_fixtures_diff_the_same_from_23_11_on():
    from tests.slurm_monitor import releases

    for version in releases.VERSIONS[2:]:
        jobs = s.parse_jobs((FIXTURES / releases.fixture_name(version)).read_text())
        running = {k: dataclasses.replace(v, state="RUNNING", state_flags=()) for k, v in jobs.items()}
        pubs, notes = summary(diff_jobs(running, jobs))
        assert ("job_state_changed", "5", "RUNNING", "CANCELLED") in pubs, version
        assert notes == [("job_failed", "1"), ("job_failed", "2"), ("job_cancelled", "5")], version


def test_unchanged_records_are_skipped_by_identity():
    # JobParser hands back the same object for an unchanged job: diff_jobs must not look inside.
    class Guard(str):
        def __ne__(self, other):
            raise AssertionError("an unchanged job was compared")

        __eq__ = __ne__
        __hash__ = str.__hash__

    untouchable = dataclasses.replace(BASE, state=Guard("RUNNING"))
    previous = {str(i): untouchable for i in range(1000)}
    previous["5"] = job("RUNNING", job_id="5")
    current = {**previous, "5": job("COMPLETED", job_id="5")}
    assert summary(diff_jobs(previous, current)) == (
        [("job_state_changed", "5", "RUNNING", "COMPLETED")], [("job_completed", "5")])


def test_job_events_go_to_the_owner_too():
    changes = diff_jobs({}, {"102": job("PENDING")})
    assert changes.publications[0].user == "bob"


def test_real_fixtures_jobs_vanishing_are_removed_without_notifications():
    mixed = s.parse_jobs((FIXTURES / "squeue-22.05-mixed.json").read_text())
    later = s.parse_jobs((FIXTURES / "squeue-empty-or-done.json").read_text())
    pubs, notes = summary(diff_jobs(mixed, later))
    assert pubs == [("job_removed", j, None, st) for j, st in
                    [("4", "RUNNING"), ("5", "RUNNING"), ("6", "PENDING"), ("7", "PENDING"),
                     ("8", "CANCELLED")]]
    assert notes == []


def test_real_fixtures_cancel_completes():
    before = s.parse_jobs((FIXTURES / "squeue-22.05-live-cancelling.json").read_text())
    after = s.parse_jobs((FIXTURES / "squeue-22.05-live-finished.json").read_text())
    assert summary(diff_jobs(before, after)) == (
        [("job_state_changed", "1", "RUNNING", "COMPLETED"),
         ("job_state_changed", "3", "COMPLETING", "CANCELLED")],
        [("job_completed", "1"), ("job_cancelled", "3")])


NODE = EXPECTED_NODES["cn01"]  # MIXED, 12/32 CPUs (37.5 %), load 6.5 (20.3 %)


def node(**changes) -> s.Node:
    return dataclasses.replace(NODE, **changes)


NODE_CASES = [
    ("baseline", None, {"cn01": NODE}, [], []),
    ("steady", {"cn01": NODE}, {"cn01": NODE}, [], []),
    ("added", {}, {"cn01": NODE}, [("node_added", "cn01", None, "MIXED")], []),
    ("removed", {"cn01": NODE}, {}, [("node_removed", "cn01", None, "MIXED")], []),
    ("drained", {"cn01": node(state="IDLE")}, {"cn01": node(state="DRAINED")},
     [("node_state_changed", "cn01", "IDLE", "DRAINED")], [("node_drained", "cn01")]),
    ("resumed", {"cn01": node(state="DRAINED")}, {"cn01": node(state="IDLE")},
     [("node_state_changed", "cn01", "DRAINED", "IDLE")], []),
    ("down", {"cn01": NODE}, {"cn01": node(state="DOWN")},
     [("node_state_changed", "cn01", "MIXED", "DOWN")], [("node_down", "cn01")]),
    ("allocation +21 points", {"cn01": NODE}, {"cn01": node(alloc_cpus=19)},
     [("node_resource_change", "cn01", None, None)], []),
    ("allocation +18.75 points: quiet", {"cn01": NODE}, {"cn01": node(alloc_cpus=18)}, [], []),
    ("load +21 points", {"cn01": NODE}, {"cn01": node(cpu_load=13.3)},
     [("node_resource_change", "cn01", None, None)], []),
    ("load unknown: quiet", {"cn01": NODE}, {"cn01": node(cpu_load=None)}, [], []),
]


@pytest.mark.parametrize("name, previous, current, pubs, notes", NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_diff_nodes(name, previous, current, pubs, notes):
    changes, _ = diff_nodes(previous, current, {})
    assert summary(changes) == (pubs, notes)


def test_resource_change_compares_with_the_last_report_not_the_last_poll():
    marks: dict[str, ResourceMark] = {}
    previous = {"cn01": NODE}
    _, marks = diff_nodes(None, previous, marks)
    reported = []
    for alloc in (14, 16, 18, 20, 22, 24, 26):  # +6.25 points per poll
        current = {"cn01": node(alloc_cpus=alloc)}
        changes, marks = diff_nodes(previous, current, marks)
        reported += [(p.data["previous_cpu_alloc_percent"], p.data["cpu_alloc_percent"])
                     for p in changes.publications]
        previous = current
    assert reported == [(37.5, 62.5)]
    assert marks["cn01"].cpu_alloc_percent == 62.5


def test_resource_change_payload():
    changes, marks = diff_nodes({"cn01": NODE}, {"cn01": node(alloc_cpus=32, cpu_load=30.0)}, {})
    (publication,) = changes.publications
    assert publication.data == {
        "node": "cn01", "cpus": 32, "alloc_cpus": 32, "cpu_alloc_percent": 100.0,
        "previous_cpu_alloc_percent": 37.5, "cpu_load_percent": 93.8, "previous_cpu_load_percent": 20.3}
    assert marks["cn01"] == ResourceMark(93.8, 100.0)


def test_real_fixtures_drain_and_resume():
    allocated = s.parse_nodes((FIXTURES / "sinfo-22.05-allocated.json").read_text())
    draining = s.parse_nodes((FIXTURES / "sinfo-22.05-draining.json").read_text())
    resumed = s.parse_nodes((FIXTURES / "sinfo-22.05-resumed.json").read_text())
    first, marks = diff_nodes(allocated, draining, {})
    second, marks = diff_nodes(draining, resumed, marks)
    assert summary(first) == ([("node_state_changed", "node001", "ALLOCATED", "DRAINING")],
                              [("node_drained", "node001")])
    assert summary(second) == ([("node_state_changed", "node001", "DRAINING", "ALLOCATED")], [])
