"""cache: only the records whose read fields changed are rebuilt; the rest are the same objects."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from slurm_monitor import snapshot as s
from slurm_monitor.cache import JobParser, NodeParser, fingerprint
from tests.slurm_monitor import releases, shapes

FIXTURES = Path(__file__).parent / "fixtures"


def doc(version: str = "v0.0.42") -> dict:
    return json.loads((FIXTURES / releases.fixture_name(version)).read_text())


@pytest.mark.parametrize("version", releases.VERSIONS)
def test_cached_parse_equals_plain_parse(version):
    parser = JobParser()
    first = parser.parse(doc(version))
    again = parser.parse(doc(version))
    assert first == again == s.parse_jobs(doc(version))
    assert all(again[k] is first[k] for k in first)  # same objects: diff skips them by identity
    assert parser.cache.rebuilt == 0


def test_only_the_changed_record_is_rebuilt():
    parser = JobParser()
    first = parser.parse(doc())
    later = doc()
    later["jobs"][2]["job_state"] = ["COMPLETED"]  # job 4 (3_1) ends
    later["jobs"][4]["priority"] = {"set": True, "infinite": False, "number": 7}  # not read
    later["jobs"][4]["last_sched_evaluation"] = 1796300999  # not read either
    second = parser.parse(later)
    assert parser.cache.rebuilt == 1
    assert second["4"].state == "COMPLETED" and second["4"] is not first["4"]
    assert all(second[k] is first[k] for k in first if k != "4")


def test_nested_values_count_in_the_fingerprint():
    record = doc()["jobs"][0]
    changed = copy.deepcopy(record)
    changed["exit_code"]["return_code"]["number"] = 4
    assert fingerprint(record, s.JOB_FIELDS) != fingerprint(changed, s.JOB_FIELDS)
    assert fingerprint(record, s.JOB_FIELDS) == fingerprint(copy.deepcopy(record), s.JOB_FIELDS)


def test_jobs_that_left_are_forgotten_and_a_broken_poll_changes_nothing():
    parser = JobParser()
    parser.parse(doc())
    assert set(parser.parse({"jobs": doc()["jobs"][:2], "errors": []})) == {"1", "2"}
    with pytest.raises(s.SnapshotError):
        parser.parse({"jobs": [{"name": "no id"}], "errors": []})
    parser.parse(doc())
    assert parser.cache.rebuilt == 3  # jobs 4, 5, 3 came back: parsed anew


def test_node_parser_reuses_unchanged_nodes():
    parser = NodeParser()
    first = parser.parse(shapes.nodes_doc("25.11"))
    nodes = shapes.with_changes(shapes.NODES, "name", "cn01", load=2000)
    second = parser.parse(shapes.nodes_doc("25.11", nodes))
    assert parser.cache.rebuilt == 1 and second["cn01"].cpu_load == 20.0
    assert all(second[n] is first[n] for n in first if n != "cn01")
    with pytest.raises(s.SnapshotError, match="no nodes"):
        parser.parse({"nodes": [], "errors": []})


def test_repeated_values_are_one_object():
    # Decoded, two records' equal strings are two objects; the parser keeps one of each.
    raw = json.dumps({"jobs": [dict(doc()["jobs"][0], job_id=n, partition="gpu", user_name="ann") for n in (1, 2)]})
    a, b = JobParser().parse(raw).values()
    assert a.partition == b.partition == "gpu" and a.partition is b.partition
    assert a.user is b.user and a.state is b.state
    assert a == s.parse_job(json.loads(raw)["jobs"][0])
