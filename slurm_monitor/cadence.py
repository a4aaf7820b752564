"""PURE: each stream's interval, stretched when Slurm is slow, failing or busy, back when not.

A dashboard must never be what overwhelms slurmctld. After every poll, ``Cadence.after_poll``
gets what the poll's commands cost and whether they worked:

- failed (a command failed or timed out): the interval doubles, up to ``maximum``
  (reason ``failing``); a controller that is down or drowning gets fewer calls, not a retry
  storm;
- slow (the commands took more than ``SLOW_SHARE`` of the base interval): the interval
  becomes long enough that commands fill at most ``SLOW_SHARE`` of it (reason ``slow``);
- busy (``sdiag``, where it answers: server threads or agent queue over the thresholds
  below): at least twice the base interval (reason ``busy``);
- otherwise the interval halves back towards the base (``recovering``, then ``normal``).

``reason`` is one of those five words (a Prometheus label: a small fixed set); ``detail``
says why in words, for the log and admin.
"""

from __future__ import annotations

from dataclasses import dataclass

SLOW_SHARE = 0.25  # commands may fill a quarter of a stream's interval
MAX_FACTOR = 12.0  # an interval stretches to at most 12 x its base (at least 60 s)
# sdiag: slurmctld serves RPCs with at most 256 threads (MAX_SERVER_THREADS); tens of them busy,
# or a thousand queued agent requests (messages to slurmd), mean it is saturated.
BUSY_SERVER_THREADS = 32
BUSY_AGENT_QUEUE = 1000
SDIAG_EVERY = 60.0  # seconds between sdiag calls (it is an RPC too)
REASONS = ("normal", "recovering", "slow", "failing", "busy")


def busy_detail(figures: dict[str, int]) -> str | None:
    """Why ``sdiag``'s figures say the scheduler is busy, or None."""
    threads, queue = figures.get("server_threads", 0), figures.get("agent_queue", 0)
    if threads >= BUSY_SERVER_THREADS:
        return f"sdiag: {threads} server threads"
    if queue >= BUSY_AGENT_QUEUE:
        return f"sdiag: agent queue {queue}"
    return None


@dataclass
class Cadence:
    base: float
    interval: float = 0.0
    reason: str = "normal"
    detail: str = ""
    maximum: float = 0.0

    def __post_init__(self) -> None:
        self.interval = self.interval or self.base
        self.maximum = self.maximum or max(self.base * MAX_FACTOR, 60.0, self.base)

    def after_poll(self, ok: bool, seconds: float, busy: str | None = None) -> bool:
        """Update after one poll whose commands took ``seconds`` in all; True when the
        interval or the reason changed (the caller logs it)."""
        before = (self.interval, self.reason)
        if not ok:
            self._set(max(self.interval, self.base) * 2, "failing", f"a command failed after {seconds:.1f}s")
        elif seconds > self.base * SLOW_SHARE:
            self._set(max(seconds / SLOW_SHARE, self.base), "slow", f"commands took {seconds:.1f}s")
        elif busy:
            self._set(max(self.interval, self.base * 2), "busy", busy)
        else:
            interval = max(self.base, self.interval / 2)
            self._set(interval, "normal" if interval == self.base else "recovering",
                      f"commands took {seconds:.2f}s")
        return (self.interval, self.reason) != before

    def _set(self, interval: float, reason: str, detail: str) -> None:
        self.interval = min(self.maximum, interval)
        self.reason = reason
        self.detail = detail
