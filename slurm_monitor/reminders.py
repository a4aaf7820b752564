"""Reminders a person is told about (issue 15): "my job reached 80 % of its time limit" and
"a node my job runs on went down". Both are per-user notifications: they go to the job's
owner only (``Notification.user``), so the sink pushes them on ``user:<owner>`` and nowhere
else, and the hub's notification rules route them (kinds ``job_time_limit``,
``job_node_down``).

PURE core (no I/O, no clock of its own):

- ``time_limit_due(jobs, now, fraction)``: the RUNNING jobs whose elapsed time reached
  ``fraction`` of their limit; jobs with no (or an unlimited) limit or no start time never are.
  ``build_time_limit_notification`` says how much time is left.
- ``went_down(previous, current)``: nodes that became unusable this poll (DOWN, DRAINED,
  DRAINING, FAIL, FAILING, or flagged NOT_RESPONDING) after being usable; a node already
  unusable changing from one of those to another is the same event.
- ``node_down_notifications(nodes, latest, before, now)``: one notification per (owner, node)
  listing that owner's jobs on it. "On it": RUNNING or SUSPENDED there in the latest jobs
  snapshot, RUNNING there in the one before (a job Slurm requeued or ended meanwhile), or
  ended NODE_FAIL there in the last ``NODE_FAIL_RECENT_SECONDS``. Node lists are Slurm host
  lists (``cn[01-03,07],gpu01``): ``expand_hostlist``.

``Reminders`` is the monitor's state around that core: the time-limit reminders already sent
(key ``<job id>@<start time>``, so a requeued job, started again, is reminded again), and the
jobs snapshot before the latest. Once per job, never again after a restart: before its first
reminder a run asks ``already_sent`` (``sent_keys``: the hub's stored ``job_time_limit``
notifications, which the monitor shares the database with) which of the due jobs were
reminded by an earlier run; without a database (``persist`` off) it remembers in memory
only. A first poll with no previous snapshot (a monitor's very first start) is a baseline,
as for every other event: jobs already past the mark then are not reminded. Node reminders
come from comparing node snapshots, so after a restart the saved one prevents repeats, as
for the cluster-wide ``node_down``.
"""

from __future__ import annotations

import logging
import re
from typing import Callable, Iterable, Mapping

from slurm_monitor.diff import Changes
from slurm_monitor.events import Notification, iso
from slurm_monitor.snapshot import UNAVAILABLE_NODE_STATES, Job, Node

logger = logging.getLogger("slurm_monitor")

TIME_LIMIT_TYPE = "job_time_limit"
NODE_DOWN_TYPE = "job_node_down"
DEFAULT_FRACTION = 0.8
NODE_FAIL_RECENT_SECONDS = 600
MAX_HOSTS = 100_000  # names one host list may expand to; beyond: the rest is ignored
MAX_LISTED_JOBS = 100  # job ids carried in one node notification's data


# --- time limits ----------------------------------------------------------------------------


def reminder_key(job: Job) -> str:
    """One reminder per run of a job: its id and start time."""
    return f"{job.job_id}@{iso(job.start_time)}"


def time_limit_due(jobs: Mapping[str, Job], now: float, fraction: float) -> list[Job]:
    """RUNNING jobs with a limit and a start time whose elapsed time is at least ``fraction``
    of the limit, in job-id order. ``fraction`` 0 (off) or a job without a limit: never."""
    if fraction <= 0:
        return []
    due = [job for job in jobs.values()
           if job.state == "RUNNING" and job.time_limit_minutes and job.start_time is not None
           and now - job.start_time >= fraction * job.time_limit_minutes * 60]
    return sorted(due, key=lambda j: (len(j.job_id), j.job_id))


def _duration(seconds: float) -> str:
    """12 s, 5 min, 1 h 05 min."""
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def build_time_limit_notification(job: Job, now: float, fraction: float) -> Notification:
    """The owner's reminder that ``job`` used ``fraction`` of its limit, with the time left."""
    assert job.time_limit_minutes and job.start_time is not None
    limit = job.time_limit_minutes * 60
    elapsed = max(0.0, now - job.start_time)
    left = max(0.0, limit - elapsed)
    label = f"Job {job.display_id}" + (f" ({job.name})" if job.name else "")
    title = f"{label}: {_duration(left)} left"
    message = (f"{label} has run {_duration(elapsed)} of its {_duration(limit)} time limit "
               f"({min(100, int(elapsed * 100 // limit))} %): {_duration(left)} left before Slurm "
               "stops it.")
    data = {"job_id": job.job_id, "display_id": job.display_id, "name": job.name,
            "partition": job.partition, "state": job.state, "nodes": job.nodes,
            "time_limit_minutes": job.time_limit_minutes, "fraction": fraction,
            "start_time": iso(job.start_time), "ends_at": iso(job.start_time + limit),
            "elapsed_seconds": int(elapsed), "remaining_seconds": int(left)}
    return Notification(TIME_LIMIT_TYPE, title[:200], message, "warning", data, job.user)


# --- nodes ----------------------------------------------------------------------------------


def unusable(node: Node) -> bool:
    return node.state in UNAVAILABLE_NODE_STATES or "NOT_RESPONDING" in node.flags


def went_down(previous: Mapping[str, Node] | None, current: Mapping[str, Node]) -> list[Node]:
    """Nodes usable in ``previous`` and unusable in ``current``, by name (none on a baseline)."""
    if previous is None:
        return []
    return [node for name, node in sorted(current.items())
            if unusable(node) and name in previous and not unusable(previous[name])]


_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def _split_outside_brackets(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _expand_one(pattern: str, budget: int) -> list[str]:
    """``rack[1-2]-n[01-02]`` -> 4 names (at most ``budget``); malformed: itself."""
    match = re.search(r"\[([^\[\]]*)\]", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[:match.start()], pattern[match.end():]
    values: list[str] = []
    for item in match.group(1).split(","):
        found = _RANGE.match(item.strip())
        if found is None:
            return [pattern]
        low, high = found.group(1), found.group(2) or found.group(1)
        width = len(low) if low.startswith("0") else 0
        for number in range(int(low), min(int(high), int(low) + budget) + 1):
            values.append(str(number).zfill(width))
    names: list[str] = []
    for value in values:
        for name in _expand_one(head + value + tail, budget - len(names)):
            names.append(name)
            if len(names) >= budget:
                return names
    return names


def expand_hostlist(text: str) -> list[str]:
    """Slurm's host list -> node names: ``cn[01-03,07],gpu01`` -> cn01 cn02 cn03 cn07 gpu01
    (zero padding kept, several bracket groups multiplied out), at most MAX_HOSTS names."""
    names: list[str] = []
    for part in _split_outside_brackets(text or ""):
        names += _expand_one(part, MAX_HOSTS - len(names))
        if len(names) >= MAX_HOSTS:
            break
    return names


def _jobs_on(nodes: set[str], latest: Mapping[str, Job], before: Mapping[str, Job] | None,
             now: float) -> dict[tuple[str, str], list[Job]]:
    """{(owner, node): [jobs]} for the jobs "on" each of ``nodes`` (see the module doc)."""
    candidates: dict[str, Job] = {}
    for job in (before or {}).values():
        if job.state == "RUNNING" and job.nodes:
            candidates[job.job_id] = job
    for job in latest.values():
        recent_fail = (job.state == "NODE_FAIL" and job.end_time is not None
                       and now - job.end_time <= NODE_FAIL_RECENT_SECONDS)
        if job.nodes and (job.state in ("RUNNING", "SUSPENDED") or recent_fail):
            candidates[job.job_id] = job
    found: dict[tuple[str, str], list[Job]] = {}
    cache: dict[str, set[str]] = {}
    for job in candidates.values():
        for name in _named(job.nodes, nodes, cache):
            found.setdefault((job.user, name), []).append(job)
    return {key: sorted(jobs, key=lambda j: (len(j.job_id), j.job_id)) for key, jobs in found.items()}


def _named(text: str, nodes: set[str], cache: dict[str, set[str]]) -> set[str]:
    """Which of ``nodes`` the host list ``text`` names. Only a part whose literal start some
    node name shares is expanded, each once (``cache``): one node down on a cluster running
    100,000 jobs must not expand every job's list."""
    if "[" not in text:  # plain names: the common case, no parsing
        return nodes.intersection(text.split(",")) if "," in text else ({text} & nodes)
    named: set[str] = set()
    for part in _split_outside_brackets(text) if "," in text else [text]:
        start = part.split("[", 1)[0]
        if any(name.startswith(start) for name in nodes):
            if part not in cache:
                cache[part] = nodes.intersection(_expand_one(part, MAX_HOSTS))
            named |= cache[part]
    return named


def _what(node: Node) -> tuple[str, str]:
    """(word, severity) for an unusable node."""
    if node.state == "DOWN":
        return "down", "error"
    if node.state in ("FAIL", "FAILING"):
        return "failing", "error"
    if node.state in ("DRAINED", "DRAINING"):
        return "draining", "warning"
    return "not responding", "error"


def node_down_notifications(down: Iterable[Node], latest: Mapping[str, Job],
                            before: Mapping[str, Job] | None, now: float) -> list[Notification]:
    """One ``job_node_down`` per (owner, node) for the owners of jobs on the ``down`` nodes."""
    by_name = {node.name: node for node in down}
    if not by_name:
        return []
    notes = []
    for (user, name), jobs in sorted(_jobs_on(set(by_name), latest, before, now).items()):
        node = by_name[name]
        word, severity = _what(node)
        ids = [job.display_id for job in jobs]
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        why = f" ({node.reason})" if node.reason else ""
        title = f"Node {name} is {word}: your job{'s' if len(ids) > 1 else ''} {shown}"
        message = (f"Node {name}, where your job{'s' if len(ids) > 1 else ''} {shown} "
                   f"{'run' if len(ids) > 1 else 'runs'}, is {word}{why}.")
        data = {"node": name, "state": node.state, "flags": list(node.flags), "reason": node.reason,
                "jobs": ids[:MAX_LISTED_JOBS]}
        notes.append(Notification(NODE_DOWN_TYPE, title[:200], message, severity, data, user))
    return notes


# --- the monitor's state --------------------------------------------------------------------


class Reminders:
    """What the monitor adds to its polls' changes. ``fraction`` 0 turns time-limit reminders
    off. ``already_sent(keys) -> the keys an earlier run sent`` (sync, e.g. ``sent_keys``)
    is asked once, before the first reminder; None: memory only."""

    def __init__(self, fraction: float = DEFAULT_FRACTION,
                 already_sent: Callable[[list[str]], set[str]] | None = None) -> None:
        self.fraction = fraction
        self.already_sent = already_sent
        self.sent: set[str] = set()
        self.checked = already_sent is None
        self.jobs_before: Mapping[str, Job] | None = None

    async def jobs(self, changes: Changes, previous: Mapping[str, Job] | None,
                   current: Mapping[str, Job], now: float) -> Changes:
        """``changes`` plus the time-limit reminders due after a jobs poll."""
        self.jobs_before = previous
        due = {reminder_key(job): job for job in time_limit_due(current, now, self.fraction)}
        if previous is None:  # a baseline: the jobs already past the mark are not news
            self.sent.update(due)
            return changes
        fresh = [key for key in due if key not in self.sent]
        if fresh and not self.checked and self.already_sent is not None:
            from asgiref.sync import sync_to_async

            try:
                self.sent.update(await sync_to_async(self.already_sent, thread_sensitive=True)(fresh))
            except Exception:  # the next poll asks again; sending now could repeat a reminder
                logger.exception("reading the time-limit reminders already sent failed")
                return changes
            self.checked = True
            fresh = [key for key in fresh if key not in self.sent]
        self.sent = {key for key in self.sent if key.split("@", 1)[0] in current}
        self.sent.update(fresh)
        notes = tuple(build_time_limit_notification(due[key], now, self.fraction) for key in fresh)
        return Changes(changes.publications, changes.notifications + notes) if notes else changes

    def nodes(self, changes: Changes, previous: Mapping[str, Node] | None, current: Mapping[str, Node],
              jobs: Mapping[str, Job] | None, now: float) -> Changes:
        """``changes`` plus the owners' notifications for the nodes that went down."""
        notes = node_down_notifications(went_down(previous, current), jobs or {}, self.jobs_before, now)
        return Changes(changes.publications, changes.notifications + tuple(notes)) if notes else changes


def sent_keys(keys: list[str], cluster: str | None = None) -> set[str]:
    """Of ``keys`` (``reminder_key``), those the hub already stored a ``job_time_limit``
    notification for (sync ORM). Only rows created since the earliest of their start times
    (less a day, should Slurm's clock and the database's disagree). Like the monitor's other
    ORM calls, it drops stale connections around itself (a long-running process). ``cluster``:
    the monitor's cluster (display name): only that cluster's notifications count (rows
    stored before clusters existed, without one, count for the primary); None: any."""
    from django.db import close_old_connections

    close_old_connections()
    try:
        return _sent_keys(keys, cluster)
    finally:
        close_old_connections()


def _sent_keys(keys: list[str], cluster: str | None = None) -> set[str]:
    from slurm_monitor.cluster_scope import primary_name

    from datetime import datetime, timedelta

    from hub.models import Notification as Row

    earliest = min((key.split("@", 1)[1] for key in keys if not key.endswith("@None")), default=None)
    rows = Row.objects.filter(type=TIME_LIMIT_TYPE, username__isnull=False)
    if earliest is not None:
        since = datetime.fromisoformat(earliest.replace("Z", "+00:00")) - timedelta(days=1)
        rows = rows.filter(created__gte=since)
    wanted = set(keys)
    found = set()
    for data in rows.values_list("data", flat=True).iterator(chunk_size=1000):
        if isinstance(data, dict) and (cluster is None
                                       or data.get("cluster", primary_name()) == cluster):
            key = f"{data.get('job_id')}@{data.get('start_time')}"
            if key in wanted:
                found.add(key)
    return found
