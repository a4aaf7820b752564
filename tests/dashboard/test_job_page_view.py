"""/jobs/<id>: login required; the page for a job one may see; a friendly 404 page (never
Django's) for an unknown, malformed or, with HUB_PRIVATE_JOBS, another user's job."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from slurm_monitor import store
from slurm_monitor.cancel import parse_command
from tests.slurm_monitor.test_history import T0, job, snap

pytestmark = pytest.mark.django_db


def signed_in(username, staff=False):
    get_user_model().objects.create_user(username, password="pw-for-tests-only", is_staff=staff)
    client = Client()
    assert client.login(username=username, password="pw-for-tests-only")
    return client


def config_of(answer):
    html = answer.content.decode()
    start = html.index('id="jobpage-config"')
    return json.loads(html[html.index(">", start) + 1:html.index("</script>", start)])


@pytest.fixture
def queue():
    task = job("11", user="bob", array_job_id="10", array_task_id=1)
    store.save_jobs(None, snap(job("5", user="alice"), task), now=T0)


def test_login_required(queue):
    answer = Client().get("/jobs/5")
    assert answer.status_code == 302 and "/accounts/login/" in answer["Location"]


def test_the_page_and_its_config(queue, settings):
    settings.SLURM_MONITOR_CANCEL_COMMAND = parse_command("scancel {job_id}")
    answer = signed_in("alice").get("/jobs/5")
    assert answer.status_code == 200 and "dashboard/jobpage.js" in answer.content.decode()
    config = config_of(answer)
    assert config["jobId"] == "5" and config["user"] == "alice" and config["cancelEnabled"] is True
    assert config["api"] == {"detail": "/api/cluster/jobs/5", "cancel": "/api/cluster/jobs/5/cancel",
                             "watch": "/api/cluster/jobs/5/watch"}


def test_cancel_is_off_by_default(queue):
    assert config_of(signed_in("alice").get("/jobs/5"))["cancelEnabled"] is False


def test_an_array_task_by_its_sbatch_id(queue):
    assert signed_in("alice").get("/jobs/10_1").status_code == 200


@pytest.mark.parametrize("job_id", ["999", "abc", "5%3Bx", "9" * 60])
def test_unknown_or_malformed_is_a_friendly_404(queue, job_id):
    answer = signed_in("alice").get(f"/jobs/{job_id}")
    assert answer.status_code == 404
    html = answer.content.decode()
    assert "No job" in html and "Back to all jobs" in html and "Traceback" not in html
    assert 'http-equiv="refresh"' not in html and "job-first-poll" not in html  # the jobs were saved


def test_before_the_monitors_first_save_the_404_page_says_so_and_looks_again():
    """An empty store: no job is known yet, whichever id; once the jobs are saved, no retry."""
    client = signed_in("alice")
    answer = client.get("/jobs/5")
    html = answer.content.decode()
    assert answer.status_code == 404 and "No job" in html
    assert '<meta http-equiv="refresh" content="5">' in html and 'id="job-first-poll"' in html
    store.save_jobs(None, snap(job("6", user="alice")), now=T0)
    html = client.get("/jobs/5").content.decode()
    assert 'http-equiv="refresh"' not in html and "job-first-poll" not in html
    assert client.get("/jobs/6").status_code == 200


def test_private_jobs_another_users_job_is_the_same_404(queue, settings):
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}
    answer = signed_in("alice").get("/jobs/10_1")
    assert answer.status_code == 404 and "No job 10_1" in answer.content.decode()
    assert signed_in("root", staff=True).get("/jobs/10_1").status_code == 200
