"""GET /api/cluster/jobs holds a real queue: server-side ordering, search, keyset and offset
pages with totals (docs/protocol.md section 6). Real database, real REST stack."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from slurm_monitor import store
from slurm_monitor.snapshot import Job

pytestmark = pytest.mark.django_db


def job(job_id: int, **fields) -> Job:
    base = dict(job_id=str(job_id), name=f"job{job_id}", user="alice", partition="cpu", state="PENDING",
                reason="Priority", nodes="", node_count=1, cpus=1, gpus=0, memory_mb=100,
                submit_time=1_700_000_000 + job_id, start_time=None, end_time=None,
                time_limit_minutes=60, exit_code=None, signal=None)
    base.update(fields)
    return Job(**base)


@pytest.fixture
def client():
    user = get_user_model().objects.create_user("viewer", password="x")
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def queue():
    """1,200 jobs: ids 1..1200 (so "9" sorts before "10" only numerically), every third
    running, cpus cycling 1..7, every tenth named "train"."""
    jobs = {}
    for i in range(1, 1201):
        jobs[str(i)] = job(i, state="RUNNING" if i % 3 == 0 else "PENDING", cpus=1 + i % 7,
                           name="train" if i % 10 == 0 else f"job{i}", user="bob" if i % 2 else "alice")
    store.save_jobs(None, jobs, "test")
    return jobs


def get(client, query: str) -> dict:
    response = client.get(f"/api/cluster/jobs?{query}")
    assert response.status_code == 200, response.content
    return response.json()


def test_keyset_pages_walk_the_whole_queue_once_in_numeric_order(client, queue):
    seen, cursor, pages = [], None, 0
    while True:
        body = get(client, "limit=500" + (f"&after={cursor}" if cursor else ""))
        assert body["count"] == 1200
        assert body["states"] == {"RUNNING": 400, "PENDING": 800}
        assert body["position"] == {"jobs": None}
        seen += [row["job_id"] for row in body["results"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(i) for i in range(1, 1201)]


def test_ordering_by_a_column_and_by_a_record_field_with_offset_paging(client, queue):
    body = get(client, "ordering=-cpus&limit=5")
    assert [r["cpus"] for r in body["results"]] == [7] * 5
    # ties broken by job id, in the same direction: no overlap, no gap between pages
    first = [r["job_id"] for r in get(client, "ordering=-cpus&limit=100")["results"]]
    second = [r["job_id"] for r in get(client, "ordering=-cpus&limit=100&offset=100")["results"]]
    both = [r["job_id"] for r in get(client, "ordering=-cpus&limit=200")["results"]]
    assert first + second == both and len(set(both)) == 200
    assert [int(i) for i in first[:3]] == sorted((i for i in range(1, 1201) if (1 + i % 7) == 7), reverse=True)[:3]
    states = [r["state"] for r in get(client, "ordering=state&limit=1200")["results"]]
    assert states == sorted(states)
    ids = [int(r["job_id"]) for r in get(client, "ordering=-job_id&limit=3")["results"]]
    assert ids == [1200, 1199, 1198]
    submit = [r["submit_time"] for r in get(client, "ordering=-submit_time&limit=3")["results"]]
    assert submit == sorted(submit, reverse=True)


def test_search_and_filters_count_before_paging(client, queue):
    body = get(client, "search=train&user=alice&limit=10")
    assert body["count"] == 120  # every tenth job is even, so alice's
    assert all(r["name"] == "train" for r in body["results"])
    assert body["next"] is not None
    # ids starting 119 (119, 1190..1199) and names containing it (job1119)
    assert get(client, "search=119&limit=50")["count"] == 12
    assert get(client, "state=RUNNING&limit=1")["states"] == {"RUNNING": 400}


@pytest.mark.parametrize("query, field", [
    ("ordering=size", "ordering"), ("after=abc", "after"), ("ordering=user&after=5", "after"),
    ("search=", "search"), ("ordering=", "ordering"),
])
def test_bad_paging_parameters_are_a_400_naming_them(client, queue, query, field):
    response = client.get(f"/api/cluster/jobs?{query}")
    assert response.status_code == 400
    assert field in str(response.json())


def test_old_answers_keep_their_keys(client, queue):
    body = get(client, "limit=2&offset=1")
    assert {"count", "results", "updated_at", "source", "position"} <= set(body)
    assert [r["job_id"] for r in body["results"]] == ["2", "3"]
