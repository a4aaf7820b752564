"""Issue 11, last bullet: the Slurm monitor's service account.

The attacker either registers (or logs in through SSO as) an account named ``slurm-monitor``
before the monitor first starts, hoping the monitor adopts it and grants it ``hub.broadcast``,
or holds a copy of the monitor's token after a rotation. Against a real daphne.
"""

from __future__ import annotations

import asyncio

import pytest
import requests
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from slurm_monitor.account import ServiceAccountError
from slurm_monitor.sinks import build_sink

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
async def _close_worker_thread_connections():
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()


def command_in_own_thread(*args: str) -> None:
    """A management command that runs its own event loop: not from asgiref's worker thread."""
    from django.db import connections

    try:
        call_command(*args)
    finally:
        connections.close_all()


def broadcast(server, token: str) -> requests.Response:
    return requests.post(f"{server.url}/api/broadcast", timeout=10, headers={"Authorization": f"Token {token}"},
                         json={"channel": "notifications", "message": {"type": "notification",
                                                                       "data": {"title": "hello"}}})


async def test_the_service_account_is_not_staff_and_holds_only_broadcast(hub_server):
    server = hub_server()
    sink = await build_sink("http", server.url, "slurm-monitor")
    account = await sync_to_async(get_user_model().objects.get)(username="slurm-monitor")
    assert not account.is_staff and not account.is_superuser and not account.has_usable_password()
    perms = await sync_to_async(lambda: sorted(account.get_all_permissions()))()
    assert perms == ["hub.broadcast"]
    assert await sink.publish("nodes", "node_state_changed", {"node": "cn01"}) is not None
    # not staff: the staff-only REST views refuse it
    for path in ("/api/clients", "/api/channels", "/api/cluster/alerts"):
        response = await asyncio.to_thread(requests.get, server.url + path, timeout=10,
                                           headers={"Authorization": f"Token {sink.token}"})
        assert response.status_code == 403, path


async def test_an_existing_account_named_slurm_monitor_is_not_adopted(hub_server, make_user):
    server = hub_server()
    squatter, squatter_token = await sync_to_async(make_user)("slurm-monitor")
    with pytest.raises(ServiceAccountError, match="SLURM_MONITOR_SERVICE_USER"):
        await build_sink("http", server.url, "slurm-monitor")
    with pytest.raises(CommandError, match="SLURM_MONITOR_SERVICE_USER"):  # the monitor refuses to start
        await asyncio.to_thread(command_in_own_thread, "run_slurm_monitor", "--once", "--mock",
                                "--sink", "http", "--hub-url", server.url)
    await sync_to_async(squatter.refresh_from_db)()
    assert not await sync_to_async(squatter.has_perm)("hub.broadcast")
    assert (await asyncio.to_thread(broadcast, server, squatter_token)).status_code == 403
    # another name, chosen by the operator, works
    sink = await build_sink("http", server.url, "hub-slurm-monitor")
    assert (await asyncio.to_thread(broadcast, server, sink.token)).status_code == 200


async def test_rotation_invalidates_the_old_token_and_the_monitor_follows(hub_server):
    # The lean broadcast route caches a credential for HUB_REST_AUTH_CACHE_SECONDS in each
    # process (SECURITY.md, "known windows"): the old token must stop within that window.
    server = hub_server({"HUB_REST_AUTH_CACHE_SECONDS": "1"})
    sink = await build_sink("http", server.url, "slurm-monitor")
    stolen = sink.token
    assert (await asyncio.to_thread(broadcast, server, stolen)).status_code == 200
    await sync_to_async(call_command)("rotate_monitor_token")
    deadline = asyncio.get_running_loop().time() + 6
    while (status := (await asyncio.to_thread(broadcast, server, stolen)).status_code) == 200:
        assert asyncio.get_running_loop().time() < deadline, "the old token still works"
        await asyncio.sleep(0.2)
    assert status == 401
    # the running monitor gets 401 once, reads the new token from the database, goes on
    assert await sink.publish("nodes", "node_state_changed", {"node": "cn01"}) is not None
    assert sink.token != stolen
    assert (await asyncio.to_thread(broadcast, server, sink.token)).status_code == 200


@pytest.mark.parametrize("shape, marked", [
    ({}, True),  # exactly as an earlier release of the monitor left it
    ({"password": "set-by-a-person"}, False),
    ({"broadcast": False}, False),  # a squatter cannot grant himself hub.broadcast
    ({"is_staff": True}, False),
])
def test_upgrade_marks_only_the_old_monitors_own_account(shape, marked):
    """The migration for installs whose monitor created its account before the marker."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Permission

    from hub.models import ServiceAccount

    migration = importlib.import_module("hub.migrations.0003_mark_legacy_monitor_account")
    user = get_user_model().objects.create_user("slurm-monitor", password=shape.get("password"),
                                                is_staff=shape.get("is_staff", False))
    if shape.get("broadcast", True):
        user.user_permissions.add(Permission.objects.get(codename="broadcast", content_type__app_label="hub"))
    migration.mark_legacy_account(apps, None)
    assert ServiceAccount.objects.filter(user=user).exists() is marked
