"""reasons: Slurm's job reason codes in words, with what the user can do (issue 14)."""

from __future__ import annotations

import pytest

from slurm_monitor import store
from slurm_monitor.reasons import CODES, explain, reason_fields
from tests.slurm_monitor.test_history import T0, job, snap
from tests.slurm_monitor.test_job_detail import client_for


@pytest.mark.parametrize("code, words", [
    ("Priority", "higher priority"),
    ("Resources", "resources"),
    ("Dependency", "depends on"),
    ("JobHeldUser", "Held by its owner"),
    ("JobHeldAdmin", "administrator"),
    ("ReqNodeNotAvail", "not available"),
    ("PartitionTimeLimit", "time limit"),
    ("BeginTime", "--begin"),
    ("JobArrayTaskLimit", "array"),
])
def test_common_codes_in_words_with_a_hint(code, words):
    text, hint = explain(code)
    assert words in text and text != code
    assert hint


def test_held_by_the_user_says_how_to_release():
    assert "scontrol release" in explain("JobHeldUser").hint


@pytest.mark.parametrize("code, resource", [
    ("AssocGrpCpuLimit", "CPUs"), ("QOSGrpMemLimit", "memory"), ("QOSGrpGRES", "generic resources"),
    ("AssocMaxWallDurationPerJobLimit", "wall time"), ("QOSMaxNodePerUserLimit", "nodes"),
    ("MaxCpuPerAccount", "CPUs"), ("MaxMemoryRunMinsPerUser", "memory"), ("QOSMinGRES", "generic"),
    ("AssocGrpCPURunMinutesLimit", "CPU-minutes of running jobs"),
])
def test_limit_families_name_the_resource(code, resource):
    text, hint = explain(code)
    assert resource in text and hint


def test_a_detail_after_the_code_is_kept():
    text, _hint = explain("ReqNodeNotAvail, UnavailableNodes:cn[01-02]")
    assert text.startswith(CODES["ReqNodeNotAvail"][0]) and "UnavailableNodes:cn[01-02]" in text


def test_unknown_codes_fall_back_to_the_raw_text():
    assert explain("SomethingSlurm26Invents") == ("SomethingSlurm26Invents", None)
    assert explain("weird text; with punctuation") == ("weird text; with punctuation", None)


@pytest.mark.parametrize("empty", [None, "", "  ", "None"])
def test_no_reason_is_none(empty):
    assert explain(empty) == (None, None)
    assert reason_fields(empty) == {"reason_text": None, "reason_hint": None}


@pytest.mark.django_db
def test_rest_rows_and_detail_carry_the_words_and_keep_the_raw_code():
    store.save_jobs(None, snap(job("5", "PENDING", reason="Priority"), job("6", "PENDING", reason="Odd")), now=T0)
    api = client_for("viewer")
    rows = {r["job_id"]: r for r in api.get("/api/cluster/jobs").json()["results"]}
    assert rows["5"]["reason"] == "Priority" and rows["5"]["reason_text"] == CODES["Priority"][0]
    assert rows["5"]["reason_hint"] == CODES["Priority"][1]
    assert (rows["6"]["reason"], rows["6"]["reason_text"], rows["6"]["reason_hint"]) == ("Odd", "Odd", None)
    detail = api.get("/api/cluster/jobs/5").json()["job"]
    assert detail["reason_text"] == CODES["Priority"][0]
