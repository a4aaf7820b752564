"""run_slurm_monitor: options and settings, --once, --mock, clean exit on SIGTERM and SIGINT."""

from __future__ import annotations

import dataclasses
import signal

import pytest
from django.core.management import CommandError, call_command

from slurm_monitor.conf import ConfigError, MonitorConfig, load_config
from slurm_monitor.models import ClusterJob, ClusterStream
from slurm_monitor.sinks import HttpSink, LayerSink, ServiceAccountError, ensure_service_token, resolve_sink_kind


def test_defaults():
    assert load_config({}) == MonitorConfig(jobs_interval=5.0, nodes_interval=10.0, metrics_interval=15.0)


@pytest.mark.parametrize("env, variable", [
    ({"SLURM_MONITOR_JOBS_INTERVAL": "abc"}, "SLURM_MONITOR_JOBS_INTERVAL"),
    ({"SLURM_MONITOR_NODES_INTERVAL": "0"}, "SLURM_MONITOR_NODES_INTERVAL"),
    ({"SLURM_MONITOR_METRICS_INTERVAL": "-1"}, "SLURM_MONITOR_METRICS_INTERVAL"),
    ({"SLURM_MONITOR_COMMAND_TIMEOUT": "x"}, "SLURM_MONITOR_COMMAND_TIMEOUT"),
    ({"SLURM_MONITOR_SINK": "kafka"}, "SLURM_MONITOR_SINK"),
    ({"HUB_URL": "ftp://hub"}, "HUB_URL"),
    ({"SLURM_MONITOR_BIN_DIR": "/nonexistent/bin"}, "SLURM_MONITOR_BIN_DIR"),
])
def test_bad_settings_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        load_config(env)


@pytest.mark.parametrize("args, option", [
    (["--jobs-interval", "0"], "--jobs-interval"),
    (["--metrics-interval", "-5"], "--metrics-interval"),
    (["--hub-url", "not a url"], "--hub-url"),
])
def test_bad_options_name_the_option(args, option):
    with pytest.raises(CommandError, match=option):
        call_command("run_slurm_monitor", *args)


def test_bad_environment_stops_the_command(monkeypatch):
    monkeypatch.setenv("SLURM_MONITOR_JOBS_INTERVAL", "soon")
    with pytest.raises(CommandError, match="SLURM_MONITOR_JOBS_INTERVAL"):
        call_command("run_slurm_monitor", "--once", "--mock")


def test_sink_choice(settings):
    settings.REDIS_URL = ""
    assert resolve_sink_kind("auto") == "http"
    settings.REDIS_URL = "redis://127.0.0.1:6379/0"
    assert resolve_sink_kind("auto") == "layer"
    assert resolve_sink_kind("http") == "http"
    assert isinstance(LayerSink(), LayerSink) and HttpSink("http://h", "t").hub_url == "http://h"


@pytest.mark.django_db
def test_service_account_is_dedicated_with_only_the_broadcast_permission():
    token = ensure_service_token("slurm-monitor")
    assert ensure_service_token("slurm-monitor") == token  # idempotent
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="slurm-monitor")
    assert user.has_perm("hub.broadcast") and not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser
    assert [f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.all()] == ["hub.broadcast"]


@pytest.mark.django_db
def test_an_existing_account_with_the_name_is_never_adopted():
    from django.contrib.auth import get_user_model

    person = get_user_model().objects.create_user("slurm-monitor", password="theirs")
    with pytest.raises(ServiceAccountError, match="SLURM_MONITOR_SERVICE_USER"):
        ensure_service_token("slurm-monitor")
    person.refresh_from_db()
    assert not person.has_perm("hub.broadcast") and person.check_password("theirs")
    with pytest.raises(CommandError, match="SLURM_MONITOR_SERVICE_USER"):
        call_command("rotate_monitor_token")
    assert ensure_service_token("slurm-monitor-2")  # another name works


@pytest.mark.django_db
def test_a_service_account_made_staff_is_demoted_and_a_deactivated_one_refused():
    from django.contrib.auth import get_user_model

    ensure_service_token("slurm-monitor")
    get_user_model().objects.filter(username="slurm-monitor").update(is_staff=True, is_superuser=True)
    ensure_service_token("slurm-monitor")
    user = get_user_model().objects.get(username="slurm-monitor")
    assert not user.is_staff and not user.is_superuser
    get_user_model().objects.filter(username="slurm-monitor").update(is_active=False)
    with pytest.raises(ServiceAccountError, match="deactivated"):
        ensure_service_token("slurm-monitor")


@pytest.mark.django_db
def test_rotate_monitor_token_replaces_the_token(capsys):
    from rest_framework.authtoken.models import Token

    with pytest.raises(CommandError, match="no account named"):
        call_command("rotate_monitor_token")
    old = ensure_service_token("slurm-monitor")
    call_command("rotate_monitor_token")
    new = ensure_service_token("slurm-monitor")
    assert new != old and not Token.objects.filter(key=old).exists()
    assert new not in capsys.readouterr().out  # the key is never printed
    call_command("rotate_monitor_token", "--user", "slurm-monitor")
    assert ensure_service_token("slurm-monitor") != new


@pytest.mark.django_db(transaction=True)
def test_once_with_the_simulated_cluster_saves_the_state(monitor_process, hub_server):
    server = hub_server()
    monitor = monitor_process(["--once", "--mock", "--seed", "5", "--hub-url", server.url], name="once-mock")
    assert monitor.wait() == 0, monitor.log_text()
    log = monitor.log_text()
    assert "jobs poll: full tier, commands took" in log  # --once: one full squeue --json
    assert "nodes poll: scontrol show nodes --json took" in log
    assert "publishing through the hub's REST API" in log
    assert ClusterJob.objects.exists()
    assert set(ClusterStream.objects.values_list("name", flat=True)) == {
        "jobs", "nodes", "metrics", "alerts", "gauges", "beat:jobs", "beat:nodes", "beat:metrics"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_exit_on_signals(sig, monitor_process):
    # No hub at this address: deliveries fail (logged) while the loop goes on.
    monitor = monitor_process(["--mock", "--jobs-interval", "0.2", "--nodes-interval", "0.2",
                               "--metrics-interval", "0.5", "--hub-url", "http://127.0.0.1:9"],
                              name=f"signal-{sig.name}")
    monitor.wait_for_log("jobs poll:", count=3)
    assert monitor.stop(sig) == 0
    log = monitor.log_text()
    assert f"received {sig.name}, stopping" in log and "monitor stopped" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("setup, source", [
    ("missing", "mock"),       # no squeue at all
    ("broken", "mock"),        # squeue installed, Slurm not answering
    ("working", "slurm"),
])
async def test_fallback_mock_only_without_a_working_slurm(setup, source, fake_slurm, tmp_path):
    from slurm_monitor.service import RunOptions, build_collector

    bin_dir = fake_slurm.dir
    if setup == "missing":
        bin_dir = tmp_path / "empty"
        bin_dir.mkdir()
    elif setup == "broken":
        (fake_slurm.dir / "squeue.json").write_text("")  # squeue prints nothing: broken
    config = dataclasses.replace(load_config({}), bin_dir=str(bin_dir))
    collector, label = await build_collector(RunOptions(config=config, fallback_mock=True))
    assert label == source
    assert len(await collector.collect_nodes()) > 0
