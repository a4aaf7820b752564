"""The read side: cluster-wide figures for REST (/api/health, clients, channels), the admin
and /metrics. With Redis every process's presence is read; embedded, this process's node."""

from __future__ import annotations

import time

from hub.engine.contracts import ChannelInfo, ClientInfo, ProcessStats
from hub.engine.node import Node, get_node


def local_process_stats(node: Node) -> ProcessStats:
    return node.process_stats()


def local_clients(node: Node) -> list[ClientInfo]:
    return node.client_infos()


async def _cluster() -> tuple[list[ProcessStats], list[ClientInfo]]:
    return await get_node().cluster_state()


async def list_processes() -> list[ProcessStats]:
    processes, _clients = await _cluster()
    return processes


async def list_clients() -> list[ClientInfo]:
    _processes, clients = await _cluster()
    return sorted(clients, key=lambda c: c.connected_at)


async def get_client(client_id: str) -> ClientInfo | None:
    return next((c for c in await list_clients() if c.client_id == client_id), None)


def _channel_members(clients: list[ClientInfo]) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {}
    for client in clients:
        for channel in client.channels:
            members.setdefault(channel, []).append(client.client_id)
    return members


async def list_channels() -> list[ChannelInfo]:
    node = get_node()
    members = _channel_members(await list_clients())
    positions = await node.history.positions(sorted(members))  # per channel: own epoch
    return [ChannelInfo(name=name, subscriber_count=len(ids), subscribers=tuple(sorted(ids)),
                        last_offset=positions[name][0], epoch=positions[name][1])
            for name, ids in sorted(members.items())]


async def get_channel(name: str) -> ChannelInfo | None:
    node = get_node()
    members = _channel_members(await list_clients()).get(name)
    offset, epoch = (await node.history.positions([name]))[name]  # read only: creates nothing
    if members is None and offset == 0:
        return None
    ids = tuple(sorted(members or ()))
    return ChannelInfo(name=name, subscriber_count=len(ids), subscribers=ids,
                       last_offset=offset, epoch=epoch)


async def get_health() -> dict:
    """PROTOCOL.md §6 health figures, cluster-wide. Raises HubUnavailable if Redis is down."""
    processes, clients = await _cluster()
    subscriptions: dict[str, int] = {}
    for proc in processes:
        for channel, count in proc.subscriptions.items():
            subscriptions[channel] = subscriptions.get(channel, 0) + count
    errors = sum(sum(proc.errors.values()) for proc in processes)
    return {
        "clients": len(clients),
        "subscriptions": subscriptions,
        "active_connections": sum(proc.active_connections for proc in processes),
        "total_connections": sum(proc.total_connections for proc in processes),
        "messages_sent": sum(proc.messages_sent for proc in processes),
        "messages_received": sum(proc.messages_received for proc in processes),
        "errors": errors,
        "dropped_sends": sum(proc.dropped_sends for proc in processes),
        "channels": len(subscriptions),
        "users_with_connections": len({c.user for c in clients if c.user}),
        "servers": len(processes),
    }


def monitor_streams(now: float | None = None, by_channel: bool = False) -> list:
    """Each Slurm monitor stream's age (``slurm_monitor.metrics.StreamAge``), from the
    heartbeats the monitor writes every poll; [] when it never reported (or is not
    installed). Sync: one database query. Ages are computed here, at read time.
    ``by_channel``: name each stream as its cluster's channel (``jobs`` on the primary,
    ``jobs.b`` on cluster b: ``slurm_monitor.clusters.channel``), for /api/health."""
    # app-loading: the monitor is an optional app; its modules load only when installed
    from django.apps import apps

    if not apps.is_installed("slurm_monitor"):
        return []
    # app-loading: slurm_monitor's models (through its heartbeats) need the app registry ready
    from slurm_monitor.metrics import stream_age
    from slurm_monitor.heartbeats import load_heartbeats

    moment = time.time() if now is None else now

    def name(beat) -> str:
        # StreamBeat.channel: the stream's channel on its cluster (jobs, jobs.b: clusters.channel)
        return (beat.channel or beat.stream) if by_channel else beat.stream
    return [stream_age(name(b), b.interval, b.ok, b.last_ok_at, b.first_at, moment)
            for b in load_heartbeats()]


def monitor_cadences() -> list:
    """Each Slurm monitor stream's heartbeat (``slurm_monitor.heartbeats.StreamBeat``): its current
    interval, configured interval and the cadence's reason; [] without the monitor."""
    # app-loading: the monitor is an optional app; its modules load only when installed
    from django.apps import apps

    if not apps.is_installed("slurm_monitor"):
        return []
    # app-loading: slurm_monitor's models (through its heartbeats) need the app registry ready
    from slurm_monitor.heartbeats import load_heartbeats

    return [b for b in load_heartbeats() if b.reason]
