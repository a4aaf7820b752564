"""arrays: per-array progress and the ids sbatch prints (10_1)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from slurm_monitor import snapshot as s
from slurm_monitor.arrays import ArrayProgress, array_progress, count_tasks, job_matches, parse_job_ref
from tests.slurm_monitor import releases

FIXTURES = Path(__file__).parent / "fixtures"


def jobs(name: str) -> dict[str, s.Job]:
    return s.parse_jobs((FIXTURES / name).read_text())


@pytest.mark.parametrize("text, expected", [
    ("", 0), (None, 0), ("3-4", 2), ("7", 1), ("1,5-9:2", 4), ("0-99%4", 100), ("1-3,10", 4),
    ("5-3", 0), ("junk", 1),
])
def test_count_tasks(text, expected):
    assert count_tasks(text) == expected


@pytest.mark.parametrize("version", releases.VERSIONS)
def test_progress_of_the_release_fixture(version):
    # 3_1 running, 3_2 cancelled (23.11+) or still COMPLETING (22.05/23.02), 3_[3-4] pending.
    progress = array_progress(jobs(releases.fixture_name(version)))
    flag_string = version in ("v0.0.38", "v0.0.39")
    assert progress == {"3": ArrayProgress("3", pending=2, running=2 if flag_string else 1,
                                           done=0 if flag_string else 1, failed=0 if flag_string else 1)}


def test_progress_over_the_real_22_05_array_lifecycle():
    assert array_progress(jobs("squeue-22.05-array-pending.json"))["3"].as_dict() == {
        "array_job_id": "3", "pending": 2, "running": 2, "done": 0, "failed": 0, "total": 4}
    done = array_progress(jobs("squeue-22.05-array-done.json"))["3"]
    assert (done.pending, done.running, done.done, done.failed) == (0, 0, 4, 1)


def test_progress_only_for_the_arrays_asked():
    listed = jobs("squeue-22.05-array-done.json")
    other = dataclasses.replace(listed["4"], job_id="40", array_job_id="39", array_task_id=0)
    both = {**listed, "40": other}
    assert set(array_progress(both)) == {"3", "39"}
    assert set(array_progress(both, only=["39"])) == {"39"}
    assert array_progress({"1": listed["1"]}) == {}  # not an array


@pytest.mark.parametrize("ref, job_id, expected", [
    ("3_1", "4", True), ("3_2", "4", False), ("3_3", "3", True), ("3_4", "3", True),
    ("3_5", "3", False), ("3", "4", True), ("3", "3", True), ("3", "1", False),
    ("1", "1", True), ("4", "4", True), ("1_1", "1", False),
])
def test_sbatch_ids_find_their_job(ref, job_id, expected):
    # squeue-22.05-array-pending: 3_1 is job 4, tasks 3 and 4 still wait in job 3 (3_[3-4]).
    listed = jobs("squeue-22.05-array-pending.json")
    assert job_matches(listed[job_id], parse_job_ref(ref)) is expected


@pytest.mark.parametrize("text", ["", "x", "10_", "_1", "10_1_2", "10-1", " 10_a"])
def test_bad_refs(text):
    assert parse_job_ref(text) is None
