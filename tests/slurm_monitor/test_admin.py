"""The cluster's rows in Django admin: visible and searchable for staff, never editable."""

from __future__ import annotations

import pytest
from django.utils import timezone

from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows():
    ClusterJob.objects.create(job_id="4242", user="alice", partition="gpu", state="RUNNING",
                              record={"job_id": "4242"})
    ClusterNode.objects.create(name="node-17", state="DRAINED", record={"name": "node-17"})
    ClusterStream.objects.create(name="jobs", source="squeue", updated_at=timezone.now())


def test_staff_find_jobs_nodes_and_streams(admin_client, rows):
    jobs = admin_client.get("/admin/slurm_monitor/clusterjob/?q=alice")
    assert jobs.status_code == 200 and "4242" in jobs.content.decode()
    nodes = admin_client.get("/admin/slurm_monitor/clusternode/?state__exact=DRAINED")
    assert nodes.status_code == 200 and "node-17" in nodes.content.decode()
    streams = admin_client.get("/admin/slurm_monitor/clusterstream/")
    assert streams.status_code == 200 and "squeue" in streams.content.decode()


def test_rows_are_read_only(admin_client, rows):
    assert admin_client.get("/admin/slurm_monitor/clusterjob/add/").status_code == 403
    assert admin_client.post("/admin/slurm_monitor/clusterjob/4242/delete/",
                             {"post": "yes"}).status_code == 403
    change = admin_client.post("/admin/slurm_monitor/clusterjob/4242/change/",
                               {"state": "CANCELLED"})
    assert change.status_code == 403
    assert ClusterJob.objects.get(job_id="4242").state == "RUNNING"


def test_plain_users_cannot_see_them(client, django_user_model, rows):
    django_user_model.objects.create_user("bob", password="pw-for-tests-only")
    client.login(username="bob", password="pw-for-tests-only")
    page = client.get("/admin/slurm_monitor/clusterjob/")
    assert page.status_code == 302 and "/admin/login/" in page["Location"]
