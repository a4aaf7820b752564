"""POST /api/cluster/jobs/<job_id>/cancel: off by default; the owner and staff only; audited;
CSRF for session callers; the command run as an argv list, never through a shell.

The command here is a small script that records the argv it was given (the real ``scancel``
is exercised by the browser test on the real Slurm, tests/dashboard/test_job_page.py)."""

from __future__ import annotations

import json
import stat

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from slurm_monitor import store
from slurm_monitor.cancel import CancelConfigError, build_argv, parse_command
from slurm_monitor.models import JobActionAudit
from tests.slurm_monitor.test_history import T0, job, snap
from tests.slurm_monitor.test_job_detail import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def recorder(tmp_path):
    """An executable that appends its argv (JSON) to calls.jsonl; exits 1 for job 13."""
    script = tmp_path / "fake-scancel"
    log = tmp_path / "calls.jsonl"
    script.write_text("#!/usr/bin/env python3\nimport json, sys\n"
                      f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                      "if '13' in sys.argv: print('scancel: error: Kill job error on job id 13', file=sys.stderr); "
                      "sys.exit(1)\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)

    def calls():
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return str(script), calls


@pytest.fixture
def enabled(settings, recorder):
    settings.SLURM_MONITOR_CANCEL_COMMAND = parse_command(f"{recorder[0]} --user {{user}} {{job_id}}")
    return recorder[1]


@pytest.fixture
def queue():
    store.save_jobs(None, snap(job("5", user="alice"), job("6", "PENDING", user="bob"), job("13", user="alice"),
                               job("21", user="alice", array_job_id="20", array_task_id=1)), now=T0)


def audits():
    return list(JobActionAudit.objects.order_by("id").values_list("actor", "job_id", "job_user", "result"))


def test_off_unless_configured(queue):
    answer = client_for("alice").post("/api/cluster/jobs/5/cancel")
    assert answer.status_code == 403 and answer.json()["code"] == "cancel_disabled"


def test_the_owner_cancels_an_argv_list_audited(queue, enabled):
    answer = client_for("alice").post("/api/cluster/jobs/5/cancel")
    assert answer.status_code == 202 and answer.json() == {"job_id": "5", "cluster": "default", "status": "requested"}
    assert enabled() == [["--user", "alice", "5"]]
    assert audits() == [("alice", "5", "alice", "ok")]


def test_an_array_task_is_cancelled_by_its_sbatch_id(queue, enabled):
    assert client_for("alice").post("/api/cluster/jobs/20_1/cancel").status_code == 202
    assert enabled() == [["--user", "alice", "20_1"]]


def test_staff_may_cancel_anyones_job(queue, enabled):
    assert client_for("root", staff=True).post("/api/cluster/jobs/6/cancel").status_code == 202
    assert enabled() == [["--user", "bob", "6"]] and audits() == [("root", "6", "bob", "ok")]


def test_another_users_job_is_403_and_audited(queue, enabled):
    answer = client_for("bob").post("/api/cluster/jobs/5/cancel")
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"
    assert enabled() == [] and audits() == [("bob", "5", "alice", "forbidden")]


def test_with_private_jobs_another_users_job_is_404(queue, enabled, settings):
    settings.HUB = {**settings.HUB, "PRIVATE_JOBS": True}
    answer = client_for("bob").post("/api/cluster/jobs/5/cancel")
    assert answer.status_code == 404 and answer.json() == {"code": "not_found", "message": "no such job"}
    assert enabled() == []


@pytest.mark.parametrize("job_id", ["999", "abc", "5;rm -rf ~", "5%20--all", "$(id)", "9" * 40, "-1"])
def test_unknown_or_malformed_ids_are_a_json_404_and_run_nothing(queue, enabled, job_id):
    answer = client_for("alice", staff=True).post(f"/api/cluster/jobs/{job_id}/cancel")
    assert answer.status_code == 404 and answer["Content-Type"] == "application/json"
    assert enabled() == []


def test_a_finished_job_is_409(enabled):
    store.save_jobs(None, snap(job("7", "COMPLETED", user="alice")), now=T0)
    answer = client_for("alice").post("/api/cluster/jobs/7/cancel")
    assert answer.status_code == 409 and answer.json()["code"] == "job_finished"
    assert enabled() == [] and audits() == [("alice", "7", "alice", "finished")]


def test_the_command_failing_is_a_502_with_its_words(queue, enabled):
    answer = client_for("alice").post("/api/cluster/jobs/13/cancel")
    assert answer.status_code == 502 and answer.json()["code"] == "cancel_failed"
    assert "Kill job error" in answer.json()["message"]
    assert audits()[0][3] == "failed"


def test_a_missing_command_is_a_502_not_a_500(queue, settings):
    settings.SLURM_MONITOR_CANCEL_COMMAND = parse_command("/nonexistent/scancel {job_id}")
    answer = client_for("alice").post("/api/cluster/jobs/5/cancel")
    assert answer.status_code == 502 and "command not found" in answer.json()["message"]


def test_anonymous_is_401(queue, enabled):
    assert Client().post("/api/cluster/jobs/5/cancel").status_code in (401, 403)
    assert enabled() == []


def test_session_callers_need_the_csrf_token(queue, enabled):
    get_user_model().objects.create_user("alice", password="pw-for-tests-only")
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="alice", password="pw-for-tests-only")
    refused = browser.post("/api/cluster/jobs/5/cancel")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"] and enabled() == []
    browser.get("/")  # the dashboard sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    assert browser.post("/api/cluster/jobs/5/cancel", HTTP_X_CSRFTOKEN=token).status_code == 202
    assert enabled() == [["--user", "alice", "5"]]


def test_get_is_405_json(queue, enabled):
    answer = client_for("alice").get("/api/cluster/jobs/5/cancel")
    assert answer.status_code == 405 and answer["Content-Type"] == "application/json"


@pytest.mark.parametrize("line, problem", [
    ("scancel", "{job_id}"), ("scancel '{job_id}", "does not parse"), ("scancel {job_id} {0.__class__}", "placeholder"),
])
def test_bad_commands_are_refused_at_start_up(line, problem):
    with pytest.raises(CancelConfigError, match=problem.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        parse_command(line)


def test_values_stay_inside_one_argument():
    template = parse_command("sudo -n -u {user} scancel '--name=x {job_id}'")
    assert template is not None
    assert build_argv(template, "10_1", "alice") == ["sudo", "-n", "-u", "alice", "scancel", "--name=x 10_1"]
    for bad_id, bad_user in (("5 6", "alice"), ("5", "a b"), ("5", "-u"), ("5", "$(id)")):
        with pytest.raises(ValueError):
            build_argv(template, bad_id, bad_user)
    assert parse_command("") is None and parse_command(None) is None


def test_a_bad_command_stops_start_up_naming_the_variable():
    """The line is validated by the app (settings stay plain data): manage.py refuses to run."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, SLURM_MONITOR_CANCEL_COMMAND="scancel {jobid}",
               DJANGO_SETTINGS_MODULE="realtime_project.test_settings")
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "SLURM_MONITOR_CANCEL_COMMAND" in result.stderr, result.stderr[-500:]
    env["SLURM_MONITOR_CANCEL_COMMAND"] = "scancel {job_id}"
    assert subprocess.run([sys.executable, "manage.py", "check"], env=env, capture_output=True,
                          timeout=120).returncode == 0
