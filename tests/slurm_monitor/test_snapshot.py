"""snapshot: every release's JSON -> the same records; broken output -> SnapshotError."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from slurm_monitor import snapshot as s
from tests.slurm_monitor import releases, shapes

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize("value, expected", [
    (5, 5), (0, 0), (2.5, 2.5), (None, None), ("7", None), (True, None),
    (4294967294, None), (4294967295, None), (65534, None), (-2, None),
    (18446744073709551614, None),
    ({"set": True, "infinite": False, "number": 12}, 12),
    ({"set": False, "infinite": False, "number": 0}, None),
    ({"set": True, "infinite": True, "number": 0}, None),
    ({"set": True, "infinite": False, "number": 4294967294}, None),
    ({"number": 3}, 3),
    ([], None),
])
def test_unwrap_number(value, expected):
    assert s.unwrap_number(value) == expected


@pytest.mark.parametrize("value, expected", [
    (1700000000, 1700000000), (0, None), ({"set": True, "infinite": False, "number": 0}, None),
    ({"set": True, "infinite": False, "number": 1700000001}, 1700000001), (None, None),
])
def test_unwrap_time(value, expected):
    assert s.unwrap_time(value) == expected


@pytest.mark.parametrize("value, expected", [
    ("RUNNING", ("RUNNING", ())), ("running", ("RUNNING", ())),
    # 22.05/23.02: a flag hides the base state (job_state_string()); CONFIGURING is always RUNNING
    ("COMPLETING", ("COMPLETING", ("COMPLETING",))), ("CONFIGURING", ("RUNNING", ("CONFIGURING",))),
    ("REQUEUED", ("REQUEUED", ("REQUEUED",))),
    (["PENDING"], ("PENDING", ())), (["RUNNING", "CONFIGURING"], ("RUNNING", ("CONFIGURING",))),
    # 23.11+: the base state says how the job ended while the epilog still runs
    (["CANCELLED", "COMPLETING"], ("CANCELLED", ("COMPLETING",))),
    (["COMPLETED", "COMPLETING"], ("COMPLETED", ("COMPLETING",))), (["FAILED"], ("FAILED", ())),
    (["PENDING", "REQUEUED", "REQUEUE_HOLD"], ("PENDING", ("REQUEUED", "REQUEUE_HOLD"))),
    ([], ("UNKNOWN", ())), (None, ("UNKNOWN", ())), ("", ("UNKNOWN", ())),
])
def test_split_job_state(value, expected):
    assert s.split_job_state(value) == expected
    assert s.normalise_job_state(value) == expected[0]


@pytest.mark.parametrize("value, expected", [
    (0, (0, None)), (768, (3, None)), (256, (1, None)), (15, (0, 15)), (9, (0, 9)),
    (4294967294, (None, None)), (None, (None, None)), (-2, (None, None)),
    ({"status": ["SUCCESS"], "return_code": {"set": True, "infinite": False, "number": 0},
      "signal": {"id": {"set": False, "infinite": False, "number": 0}, "name": ""}}, (0, None)),
    ({"status": ["ERROR"], "return_code": {"set": True, "infinite": False, "number": 3},
      "signal": {"id": {"set": False, "infinite": False, "number": 0}, "name": ""}}, (3, None)),
    ({"status": ["SIGNALED"], "return_code": {"set": True, "infinite": False, "number": 0},
      "signal": {"id": {"set": True, "infinite": False, "number": 9}, "name": "KILL"}}, (0, 9)),
    # What DUMP_FUNC(PROCESS_EXIT_CODE) really prints for WIFSIGNALED: return_code NO_VAL.
    ({"status": ["SIGNALED"], "return_code": {"set": False, "infinite": False, "number": 0},
      "signal": {"id": {"set": True, "infinite": False, "number": 9}, "name": "KILL"}}, (0, 9)),
    # 23.02.4+ (v0.0.39 UINT32_NO_VAL): the raw wait status wrapped in a number object.
    ({"set": True, "infinite": False, "number": 768}, (3, None)),
    ({"set": True, "infinite": False, "number": 9}, (0, 9)),
    ({"set": True, "infinite": False, "number": 0}, (0, None)),
    ({"set": False, "infinite": False, "number": 0}, (None, None)),
    (36608, (143, None)),  # real 22.05: an array task cancelled by scancel (bash's 128 + 15)
    (shapes.VERBOSE_EXIT_PLAIN, (3, None)),
    ({"status": "SIGNALED", "return_code": 0, "signal": {"signal_id": 15, "name": "TERM"}}, (0, 15)),
    ({"status": ["PENDING"], "return_code": {"set": False, "infinite": False, "number": 0}}, (None, None)),
])
def test_decode_exit_code(value, expected):
    assert s.decode_exit_code(value) == expected


@pytest.mark.parametrize("state, flags, expected", [
    ("idle", [], ("IDLE", ())),
    ("allocated", [], ("ALLOCATED", ())),
    ("idle", ["DRAIN"], ("DRAINED", ())),
    ("allocated", ["DRAIN"], ("DRAINING", ())),
    ("mixed", ["DRAIN", "NOT_RESPONDING"], ("DRAINING", ("NOT_RESPONDING",))),
    ("down", ["DRAIN", "NOT_RESPONDING"], ("DOWN", ("NOT_RESPONDING",))),
    (["IDLE"], (), ("IDLE", ())),
    (["IDLE", "DRAIN"], (), ("DRAINED", ())),
    (["MIXED", "DRAIN"], (), ("DRAINING", ())),
    (["IDLE", "COMPLETING", "DRAIN"], (), ("DRAINING", ("COMPLETING",))),
    (["DOWN", "NOT_RESPONDING"], (), ("DOWN", ("NOT_RESPONDING",))),
    (["IDLE", "FAIL"], (), ("FAIL", ())),
    (["ALLOCATED", "FAIL"], (), ("FAILING", ())),
    (["IDLE", "POWERED_DOWN", "CLOUD"], (), ("IDLE", ("CLOUD", "POWERED_DOWN"))),
    ([], (), ("UNKNOWN", ())),
    (None, None, ("UNKNOWN", ())),
])
def test_normalise_node_state(state, flags, expected):
    assert s.normalise_node_state(state, flags) == expected


@pytest.mark.parametrize("gres, expected", [
    ("", 0), ("N/A", 0), ("(null)", 0), (None, 0), ("gpu:4", 4), ("gpu:a100:4(S:0-1)", 4),
    ("gpu:h100:2,gpu:h200:4", 6), ("gpu:h100:1(IDX:0),gpu:h200:0(IDX:N/A)", 1),
    ("gpu:a100:2(IDX:0,2),mps:200", 2), ("gres/gpu:3", 3), ("gpu", 1), ("mps:100", 0),
])
def test_parse_gres_gpus(gres, expected):
    assert s.parse_gres_gpus(gres) == expected


@pytest.mark.parametrize("text, expected", [
    ("4000M", 4000), ("6.50G", 6656), ("128G", 131072), ("512", 512), ("1T", 1048576),
    ("2048K", 2), ("", None), (None, None), ("lots", None),
])
def test_parse_memory_mb(text, expected):
    assert s.parse_memory_mb(text) == expected


@pytest.mark.parametrize("tres, expected", [
    ("cpu=4,mem=16G,node=1,gres/gpu=2", 2), ("cpu=64,gres/gpu=4,gres/gpu:a100=4", 4),
    ("cpu=1,gres/gpu:a100=1,gres/gpu:h100=2", 3), ("cpu=1,node=1", 0), ("", 0),
])
def test_tres_gpus(tres, expected):
    assert s.tres_gpus(s.parse_tres(tres)) == expected


EXPECTED_JOBS = {
    "101": s.Job("101", "job101", "alice", "gpu", "PENDING", "Resources", "", 1, 4, 2, 16384,
                 1700000000, None, None, 60, None, None),
    "102": s.Job("102", "job102", "bob", "cpu", "RUNNING", None, "cn01", 1, 8, 0, 8000,
                 1700000050, 1700000100, None, None, None, None),
    "103": s.Job("103", "job103", "carol", "cpu", "FAILED", "NonZeroExitCode", "cn01", 1, 1, 0, 1024,
                 1700000000, 1700000200, 1700000300, 30, 3, None),
    "104": s.Job("104", "job104", "dave", "cpu", "CANCELLED", None, "cn01", 1, 2, 0, None,
                 1700000000, 1700000200, 1700000400, 30, 0, 15),
    "105": s.Job("105", "job105", "alice", "cpu", "TIMEOUT", "TimeLimit", "cn01", 1, 1, 0, None,
                 1700000000, 1700000100, 1700000700, 10, 0, 15),
    "106": s.Job("106", "job106", "bob", "gpu", "COMPLETING", None, "gpu01", 1, 64, 4, 102400,
                 1700000000, 1700000100, None, 120, None, None, ("COMPLETING",)),
    "107": s.Job("107", "job107", "alice", "cpu", "COMPLETED", None, "cn01", 1, 1, 0, None,
                 1700000000, 1700000100, 1700000200, 5, 0, None),
}

EXPECTED_NODES = {
    "cn01": s.Node("cn01", "MIXED", (), None, ("cpu",), 32, 12, 6.5, 64000, 9024, 50000, 0, 0),
    "cn02": s.Node("cn02", "DRAINED", (), "disk replacement", ("cpu",), 32, 0, 0.03, 64000, 0, 60000, 0, 0),
    "cn03": s.Node("cn03", "DOWN", ("NOT_RESPONDING",), "Not responding", ("cpu",), 32, 0, None,
                   64000, 0, None, 0, 0),
    "gpu01": s.Node("gpu01", "ALLOCATED", (), None, ("gpu",), 64, 64, 64.0, 512000, 102400, 300000, 4, 4),
    "gpu02": s.Node("gpu02", "DRAINING", (), "ECC errors", ("gpu",), 64, 16, 12.0, 512000, 4096,
                    400000, 6, 1),
}


# Job 106 ends COMPLETED but Slurm still runs its epilog (COMPLETING). 22.05 and 23.02 print
# only "COMPLETING"; from 23.11 the list says COMPLETED first, so the record is final at once.
COMPLETING_2311 = s.Job("106", "job106", "bob", "gpu", "COMPLETED", None, "gpu01", 1, 64, 4, 102400,
                        1700000000, 1700000100, 1700000800, 120, 0, None, ("COMPLETING",))


def expected_jobs(release: str) -> dict[str, s.Job]:
    return EXPECTED_JOBS if release in ("22.05", "23.02") else {**EXPECTED_JOBS, "106": COMPLETING_2311}


@pytest.mark.parametrize("release", shapes.RELEASES)
def test_every_release_gives_the_same_jobs(release):
    doc = shapes.squeue_doc(release)
    assert s.parse_jobs(json.dumps(doc)) == expected_jobs(release)
    assert s.parse_jobs(doc) == expected_jobs(release)
    assert s.slurm_release(doc) == f"{release}.1"


def _role(job_id: str, **changes) -> s.Job:
    base = dict(name="arr", user="root", partition="debug", reason=None, nodes="vm", node_count=1,
                cpus=1, gpus=0, memory_mb=21694, submit_time=1796300609, start_time=1796300609,
                end_time=None, time_limit_minutes=None, exit_code=None, signal=None,
                array_job_id="3")
    return s.Job(job_id=job_id, **{**base, **changes})


# The five jobs of each data_parser version's fixture (releases.py), as records.
RELEASE_JOBS = {
    "1": _role("1", name="exit3", state="FAILED", reason="NonZeroExitCode", submit_time=1796300606,
               start_time=1796300606, end_time=1796300606, time_limit_minutes=525600, exit_code=3,
               array_job_id=None),
    "2": _role("2", name="killed", state="FAILED", reason="JobLaunchFailure", submit_time=1796300606,
               start_time=1796300606, end_time=1796300606, time_limit_minutes=525600, exit_code=0,
               signal=9, array_job_id=None),
    "4": _role("4", state="RUNNING", array_task_id=1),
    "5": _role("5", state="CANCELLED", state_flags=("COMPLETING",), end_time=1796300616, exit_code=0,
               array_task_id=2),
    "3": _role("3", state="PENDING", reason="Resources", nodes="", start_time=None, array_tasks="3-4"),
}
# 22.05 and 23.02 print "COMPLETING" alone: how task 3_2 ended is not known yet.
RELEASE_JOBS_FLAG_STRING = {**RELEASE_JOBS, "5": _role("5", state="COMPLETING", state_flags=("COMPLETING",),
                                                         array_task_id=2)}


@pytest.mark.parametrize("version", releases.VERSIONS)
def test_each_data_parser_version_fixture(version):
    jobs = s.parse_jobs(fixture(releases.fixture_name(version)))
    expected = RELEASE_JOBS_FLAG_STRING if version in ("v0.0.38", "v0.0.39") else RELEASE_JOBS
    if version == "v0.0.38":  # the full capture (the later fixtures are trimmed to what parse_job read)
        expected = {k: dataclasses.replace(j, working_directory="/tmp/slurmcap", stdout_path="/dev/null")
                    for k, j in expected.items()}
    assert jobs == expected
    assert list(jobs) == ["1", "2", "4", "5", "3"]
    assert [j.display_id for j in jobs.values()] == ["1", "2", "3_1", "3_2", "3_[3-4]"]
    assert s.slurm_release(fixture(releases.fixture_name(version))) == releases.RELEASE_OF[version]


@pytest.mark.parametrize("version", releases.VERSIONS[1:])
def test_release_fixture_files_match_their_cited_builder(version):
    assert json.loads(fixture(releases.fixture_name(version))) == releases.squeue_doc(version)


def test_23_02_failed_job_has_its_exit_code():
    # The bug of issue 13: v0.0.39's NoVal-wrapped wait status was read as the verbose object.
    jobs = s.parse_jobs(fixture("squeue-v0.0.39.json"))
    assert (jobs["1"].exit_code, jobs["1"].signal) == (3, None)
    assert (jobs["2"].exit_code, jobs["2"].signal) == (0, 9)


def test_real_2205_array_lifecycle():
    pending = s.parse_jobs(fixture("squeue-22.05-array-pending.json"))
    assert {j.display_id: j.state for j in pending.values()} == {
        "1": "FAILED", "2": "FAILED", "3_1": "RUNNING", "3_2": "RUNNING", "3_[3-4]": "PENDING"}
    done = s.parse_jobs(fixture("squeue-22.05-array-done.json"))
    # The array's own record (job 3) became task 4 once the last task started.
    assert (done["3"].display_id, done["3"].state, done["3"].array_tasks) == ("3_4", "COMPLETED", None)
    assert (done["5"].state, done["5"].exit_code, done["5"].signal) == ("CANCELLED", 143, None)
    assert done["6"].display_id == "3_3" and done["1"].array_job_id is None


@pytest.mark.parametrize("job_id, expected", [
    (65534, "65534"), (65535, "65535"), (4294967293, "4294967293"),
    ({"set": True, "infinite": False, "number": 65534}, "65534"),
])
def test_job_ids_that_look_like_16_bit_sentinels_are_ids(job_id, expected):
    # Found by the 100,000-job simulator: job 65534 was dropped as NO_VAL16, failing the poll.
    record = {"job_id": job_id, "job_state": "RUNNING", "array_job_id": job_id, "array_task_id": 65534}
    job = s.parse_job(record)
    assert (job.job_id, job.display_id) == (expected, f"{expected}_65534")


@pytest.mark.parametrize("job_id", [4294967294, 4294967295, -2, None, "7", True,
                                    {"set": False, "infinite": False, "number": 0}])
def test_unset_job_ids_are_rejected(job_id):
    with pytest.raises(s.SnapshotError, match="no job_id"):
        s.parse_job({"job_id": job_id})


def test_a_job_loaded_back_from_json_equals_the_parsed_one():
    import dataclasses

    job = RELEASE_JOBS["5"]
    loaded = s.Job(**json.loads(json.dumps(dataclasses.asdict(job))))
    assert loaded == job and loaded.state_flags == ("COMPLETING",)
    old = {k: v for k, v in dataclasses.asdict(job).items()
           if k not in ("state_flags", "array_job_id", "array_task_id", "array_tasks")}
    assert s.Job(**old).display_id == "5"  # saved by an earlier monitor: still readable


@pytest.mark.parametrize("release", shapes.RELEASES)
def test_every_release_gives_the_same_nodes(release):
    assert s.parse_nodes(json.dumps(shapes.nodes_doc(release))) == EXPECTED_NODES


def test_real_2205_squeue():
    jobs = s.parse_jobs(fixture("squeue-22.05-mixed.json"))
    assert {j: (x.state, x.exit_code, x.user) for j, x in jobs.items()} == {
        "1": ("COMPLETED", 0, "alice"), "2": ("COMPLETED", 0, "alice"), "3": ("FAILED", 3, "alice"),
        "4": ("RUNNING", None, "alice"), "5": ("RUNNING", None, "alice"),
        "6": ("PENDING", None, "alice"), "7": ("PENDING", None, "alice"),
        "8": ("CANCELLED", 0, "alice")}
    # A running job's projected end (start + a year for "unlimited") is not an end time.
    assert jobs["4"].end_time is None and jobs["4"].time_limit_minutes is None
    assert jobs["6"].memory_mb == 4000 and jobs["6"].reason == "Resources"
    assert jobs["8"].cpus is None


def test_real_2205_live_cancel_and_exit_3():
    jobs = s.parse_jobs(fixture("squeue-22.05-live-cancelling.json"))
    assert (jobs["2"].state, jobs["2"].exit_code) == ("FAILED", 3)
    assert jobs["3"].state == "COMPLETING"
    done = s.parse_jobs(fixture("squeue-22.05-live-finished.json"))
    assert (done["3"].state, done["3"].exit_code, done["3"].signal) == ("CANCELLED", 0, 15)
    assert done["1"].state == "COMPLETED" and done["1"].user == "root"


@pytest.mark.parametrize("name, state, reason", [
    ("sinfo-22.05-allocated.json", "ALLOCATED", None),
    ("sinfo-22.05-draining.json", "DRAINING", "disk replacement"),
    ("sinfo-22.05-resumed.json", "ALLOCATED", None),
    ("sinfo-22.05-idle-drain.json", "DRAINED", "test"),
])
def test_real_2205_sinfo(name, state, reason):
    nodes = s.parse_nodes(fixture(name))
    node = next(iter(nodes.values()))
    assert (node.state, node.reason) == (state, reason)
    assert node.cpus == 2 and node.free_memory_mb is not None and node.cpu_load is not None


@pytest.mark.parametrize("raw, message", [
    ("", "empty output"),
    ("   \n", "empty output"),
    ("squeue: error: Unable to contact slurm controller", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"meta": {}}', "no 'jobs' list"),
    ('{"jobs": [1]}', "no 'jobs' list"),
    ('{"jobs": [], "errors": [{"error": "boom"}]}', "boom"),
    ('{"jobs": [{"name": "no id"}]}', "no job_id"),
])
def test_broken_squeue_output_is_an_error(raw, message):
    with pytest.raises(s.SnapshotError, match=message):
        s.parse_jobs(raw)


def test_unreachable_controller_is_an_error_not_an_empty_queue():
    # Real 22.05 output with slurmctld stopped: exit code 0, no jobs, one error.
    with pytest.raises(s.SnapshotError, match="Failed while looking for jobs"):
        s.parse_jobs(fixture("squeue-22.05-controller-down.json"))


def test_an_empty_queue_is_fine_but_no_nodes_is_broken():
    assert s.parse_jobs('{"jobs": [], "errors": []}') == {}
    with pytest.raises(s.SnapshotError, match="no nodes"):
        s.parse_nodes('{"nodes": [], "errors": []}')
    with pytest.raises(s.SnapshotError, match="no name"):
        s.parse_nodes('{"nodes": [{"cpus": 2}]}')


def test_node_percentages():
    node = EXPECTED_NODES["cn01"]
    assert node.cpu_alloc_percent == 37.5
    assert node.cpu_load_percent == 20.3
    assert node.memory_alloc_percent == 14.1
    assert EXPECTED_NODES["cn03"].cpu_load_percent is None
    assert EXPECTED_NODES["gpu02"].gpu_alloc_percent == 16.7


def test_job_page_fields_where_slurm_reports_them():
    """Issue 14: account, QOS, working directory, output paths, dependency; "" and "(null)"
    (what Slurm prints for unset strings) become None."""
    record = {"job_id": 7, "job_state": "PENDING", "account": "physics", "qos": "normal",
              "current_working_directory": "/home/ann/run", "standard_output": "/home/ann/run/7.out",
              "standard_error": "", "dependency": "afterok:6(unfulfilled)"}
    job = s.parse_job(record)
    assert (job.account, job.qos, job.working_directory, job.stdout_path, job.stderr_path, job.dependency) == \
        ("physics", "normal", "/home/ann/run", "/home/ann/run/7.out", None, "afterok:6(unfulfilled)")
    assert s.parse_job({"job_id": 8, "dependency": "(null)", "qos": None}).dependency is None
