"""slices: a big document's records decoded a slice at a time, exactly as the whole document."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from slurm_monitor import collector, snapshot as s
from slurm_monitor.cache import JobParser
from slurm_monitor.mock_scale import ScaleCluster
from slurm_monitor.slices import iter_records
from tests.slurm_monitor import releases

FIXTURES = Path(__file__).parent / "fixtures"


class CountingDecode:
    """orjson.loads, remembering the length of every text it was given."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, text):
        self.sizes.append(len(text))
        return orjson.loads(text)

    dumps = staticmethod(orjson.dumps)
    JSONDecodeError = orjson.JSONDecodeError
    JSONEncodeError = orjson.JSONEncodeError

    @property
    def loads(self):
        return self


def fixture_text(version: str, indent: int | None) -> str:
    """A release's squeue --json, grown to 40 records (ids kept apart), as squeue prints it."""
    doc = json.loads((FIXTURES / releases.fixture_name(version)).read_text())
    base = doc["jobs"]
    doc["jobs"] = []
    for copy in range(40 // len(base) + 1):
        for record in json.loads(json.dumps(base)):
            record["job_id"] = record["job_id"] + 1000 * copy if isinstance(record["job_id"], int) else record["job_id"]
            doc["jobs"].append(record)
    return json.dumps(doc, indent=indent)


@pytest.mark.parametrize("version", releases.VERSIONS)
@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("slice_chars", [1, 300, 5000])
def test_sliced_records_equal_the_whole_documents(version, indent, slice_chars):
    text = fixture_text(version, indent)
    assert list(iter_records(text, "jobs", orjson.loads, slice_chars)) == orjson.loads(text)["jobs"]


def test_a_nested_list_of_objects_with_the_records_first_key_is_not_a_cut():
    # Every "}, {"job_id"" inside a record is a candidate cut; none of them decodes.
    records = [{"job_id": i, "steps": [{"job_id": i, "n": n} for n in range(3)],
                "name": 'x"},{"job_id": 9}]'} for i in range(30)]
    text = json.dumps({"meta": {"command": ["squeue"]}, "jobs": records, "warnings": [{"w": [1]}], "errors": []})
    decode = CountingDecode()
    assert list(iter_records(text, "jobs", decode, 1)) == records
    assert max(decode.sizes) < len(text) / 4  # never the whole document


def test_a_broken_answer_raises():
    text = json.dumps({"jobs": [{"job_id": i} for i in range(50)],
                       "errors": [{"description": "Unable to contact slurm controller"}]})
    with pytest.raises(s.SnapshotError, match="contact slurm controller"):
        list(iter_records(text, "jobs", orjson.loads, 10))


def test_a_truncated_record_list_raises():
    text = json.dumps({"jobs": [{"job_id": i} for i in range(50)], "errors": []})
    broken = text.replace('{"job_id": 30}', '{"job_id": 30', 1)
    with pytest.raises(s.SnapshotError):
        list(iter_records(broken, "jobs", orjson.loads, 10))
    with pytest.raises(s.SnapshotError, match="no 'jobs' list"):
        list(iter_records(json.dumps({"nodes": [{"job_id": 1}] * 50}), "jobs", orjson.loads, 10))
    with pytest.raises(s.SnapshotError, match="not JSON"):
        list(iter_records("{" + text, "jobs", orjson.loads, 10))


def test_the_collector_decodes_a_full_squeue_in_slices(monkeypatch):
    cluster = ScaleCluster(20, 3000, seed=1)
    text = cluster.squeue_json()
    decode = CountingDecode()
    monkeypatch.setattr(collector, "orjson", decode)
    jobs = collector.parse_jobs_output(JobParser(), text)
    assert jobs == s.parse_jobs(text)
    assert list(jobs) == list(s.parse_jobs(text))
    assert len(text) > 2_000_000 and max(decode.sizes) < len(text) / 2
