"""store_sql.insert_rows writes the rows bulk_create(update_conflicts=True) writes, and
save_jobs goes through it (one executemany per batch, not the ORM's compiler)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db.models.sql.compiler import SQLInsertCompiler

from slurm_monitor import store
from slurm_monitor.models import ClusterJob, JobTransition
from slurm_monitor.snapshot import Job
from slurm_monitor.store_sql import JOB_COLUMNS, insert_rows

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=timezone(timedelta(hours=2)))  # not UTC: adapted as the ORM does


def row_values(job_id: str) -> dict:
    row = ClusterJob.objects.values().get(job_id=job_id)
    row.pop("updated_at")
    return row


def test_insert_rows_writes_what_bulk_create_writes():
    values = [("orm", "c1", "ann", "gpu", "RUNNING", {"a": [1, "x"], "b": None}, T0, "7", None, None, None, 0),
              ("orm2", "", "bob", "cpu", "FAILED", {"exit": 3}, T0, None, T0 + timedelta(minutes=5), T0, None, 0)]
    ClusterJob.objects.bulk_create([ClusterJob(**dict(zip(JOB_COLUMNS, v))) for v in values])
    insert_rows(ClusterJob, JOB_COLUMNS, [("raw" + v[0][3:],) + v[1:] for v in values])
    for name in ("", "2"):
        orm, raw = row_values("orm" + name), row_values("raw" + name)
        assert raw == dict(orm, job_id="raw" + name)
    # A conflict updates the named columns only, as bulk_create(update_conflicts=True) does.
    ClusterJob.objects.filter(job_id="raw").update(accounting={"kept": True}, accounting_tries=2)
    insert_rows(ClusterJob, JOB_COLUMNS, [("raw", "c1", "ann", "gpu", "COMPLETED", {"a": 2}, T0, "7",
                                           T0, None, None, 0)], unique="job_id", update=JOB_COLUMNS[2:10])
    row = row_values("raw")
    assert (row["state"], row["record"], row["ended_at"]) == ("COMPLETED", {"a": 2}, T0)
    assert (row["accounting"], row["accounting_tries"]) == ({"kept": True}, 2)
    assert ClusterJob.objects.count() == 4


def test_save_jobs_does_not_compile_inserts_through_the_orm(monkeypatch):
    compiled = []
    original = SQLInsertCompiler.as_sql
    monkeypatch.setattr(SQLInsertCompiler, "as_sql",
                        lambda self, *a, **k: compiled.append(self.query.model) or original(self, *a, **k))
    jobs = {str(i): Job(job_id=str(i), name="j", user="u", partition="cpu", state="PENDING", reason=None,
                        nodes="", node_count=1, cpus=1, gpus=0, memory_mb=100, submit_time=1796300000 + i,
                        start_time=None, end_time=None, time_limit_minutes=10, exit_code=None, signal=None)
            for i in range(1, 30)}
    store.save_jobs(None, jobs, now=T0)
    later = dict(jobs, **{"3": Job(**{**store.job_record(jobs["3"]), "state": "FAILED", "end_time": 1796300500})})
    store.save_jobs(jobs, later, now=T0)
    assert ClusterJob not in compiled and JobTransition not in compiled  # the stream's row goes through the ORM
    assert ClusterJob.objects.get(job_id="3").state == "FAILED"
    assert ClusterJob.objects.get(job_id="3").ended_at == datetime.fromtimestamp(1796300500, tz=timezone.utc)
    assert list(JobTransition.objects.filter(job_id="3").order_by("at").values_list("state", flat=True)) == [
        "PENDING", "FAILED"]
    assert ClusterJob.objects.count() == JobTransition.objects.count() - 1 == 29
