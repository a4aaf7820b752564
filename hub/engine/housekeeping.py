"""The per-process housekeeping loop: heartbeats, idle/auth timeouts, stats reporting, the
delivery self-check (``hub.engine.repair``), and the credential re-check (``node.recheck``,
installed by the socket side: ``hub.socket.credentials.recheck``; once per heartbeat interval, in
the background so a slow database never delays heartbeats; a JWT's expiry is checked by
each socket's ``tick``).

One loop for all sockets instead of timers per socket: 10,000 idle sockets cost one sweep
per tick, not 10,000 sleeping tasks. The heartbeat frame is encoded once per beat.
"""

from __future__ import annotations

import asyncio
import logging
import time

from typing import Any

from hub.socket import protocol as p
from hub.engine.transport import Payload

logger = logging.getLogger("hub.engine")
STATS_REPORT_SECONDS = 5.0
GROUP_REFRESH_SECONDS = 3600.0
# Sockets ticked per event-loop turn: a heartbeat to 5,000 sockets is ~50 ms of writes,
# which would otherwise hold every fan-out up for that long.
TICK_CHUNK = 200


def tick_seconds(heartbeat: float, connection_timeout: float, auth_timeout: float) -> float:
    return max(0.05, min(heartbeat / 2, connection_timeout / 4, auth_timeout / 4, 5.0))


async def run_housekeeping(node: Any, *, heartbeat: float, connection_timeout: float,
                           auth_timeout: float, report) -> None:
    """Runs until cancelled; never dies on one failed sweep (logs with the traceback)."""
    tick = tick_seconds(heartbeat, connection_timeout, auth_timeout)
    # Presence keys expire after two heartbeats: report at least twice per heartbeat.
    report_every = min(STATS_REPORT_SECONDS, heartbeat / 2)
    now = time.monotonic()
    next_beat, next_report, next_refresh = now + heartbeat, now, now + GROUP_REFRESH_SECONDS
    rechecking: asyncio.Task | None = None
    while True:
        await asyncio.sleep(tick)
        try:
            now = time.monotonic()
            beat = None
            if now >= next_beat:
                beat, next_beat = Payload(p.build_heartbeat()), now + heartbeat
            conns = list(node.connections.values())
            for start in range(0, len(conns), TICK_CHUNK):
                if start:
                    await asyncio.sleep(0)
                for conn in conns[start:start + TICK_CHUNK]:
                    conn.tick(now, beat)
            if beat is not None and (rechecking is None or rechecking.done()):
                rechecking = _start_recheck(node.recheck, conns)
            if now >= next_report:
                next_report = now + report_every
                await report(node)
                await node.check_delivery()
            if now >= next_refresh:
                next_refresh = now + GROUP_REFRESH_SECONDS
                await node.refresh_groups()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("housekeeping sweep failed; continuing")


def _start_recheck(recheck: Any, conns: list) -> asyncio.Task | None:
    """Re-check the credentials of the authenticated sockets among ``conns``: one batch."""
    if recheck is None:
        return None
    due = [conn for conn in conns if getattr(conn, "credential", None) is not None
           and getattr(conn, "state", "") == "connected"]
    if not due:
        return None
    return asyncio.get_running_loop().create_task(recheck(due), name="hub-credential-recheck")
