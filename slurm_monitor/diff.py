"""PURE: (previous snapshot, current snapshot) -> the events and notifications to send.

Rules:
- ``previous is None`` is the first poll (the baseline): nothing is sent.
- A job seen for the first time gives ``job_submitted`` carrying its current state (a job can
  start, or even finish, between two polls); if that state is final, its notification too.
- A job whose (base) state changed gives ``job_state_changed`` (with ``previous_state``);
  reaching a final state (COMPLETED, FAILED, CANCELLED, TIMEOUT, ...) also gives its
  notification, even while Slurm still flags the job COMPLETING (23.11 on). A change of flags
  alone (COMPLETING cleared, CONFIGURING done) sends nothing; the flags ride on the events.
- A job no longer listed gives ``job_removed`` only: Slurm purged it, which says nothing about
  how it ended, so no notification.
- Nodes: ``node_added`` / ``node_removed`` / ``node_state_changed``; DOWN or DRAIN give a
  notification on entry; ``node_resource_change`` when CPU load or allocation moved more than
  ``RESOURCE_CHANGE_POINTS`` percentage points since the last one reported for that node (the
  marks), so slow drifts are reported too and a steady node is not reported every poll.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from slurm_monitor.events import (
    Notification,
    Publication,
    build_job_notification,
    build_job_removed,
    build_job_state_changed,
    build_job_submitted,
    build_node_added,
    build_node_notification,
    build_node_removed,
    build_node_resource_change,
    build_node_state_changed,
)
from slurm_monitor.snapshot import TERMINAL_JOB_STATES, Job, Node

RESOURCE_CHANGE_POINTS = 20.0


@dataclass(frozen=True)
class Changes:
    publications: tuple[Publication, ...] = ()
    notifications: tuple[Notification, ...] = ()

    def __len__(self) -> int:
        return len(self.publications) + len(self.notifications)


@dataclass(frozen=True)
class ResourceMark:
    """A node's figures when its last node_resource_change (or first sighting) happened."""

    cpu_load_percent: float | None
    cpu_alloc_percent: float


def _job_order(job_id: str) -> tuple[int, str]:
    return (int(job_id), job_id) if job_id.isdigit() else (1 << 62, job_id)


def diff_jobs(previous: Mapping[str, Job] | None, current: Mapping[str, Job],
              touched: Iterable[str] | None = None) -> Changes:
    """Events in job-id order. ``state`` is the base state, so a job whose list reads
    ``[CANCELLED, COMPLETING]`` has ended: its terminal event and notification go now, and a
    later ``[CANCELLED]`` (only a flag cleared) sends nothing; a purge while still completing
    sends ``job_removed`` only. Cost: set operations on the ids, an identity test per job
    (``JobParser`` hands back the very same record when a job's fields did not change), then
    work only for the jobs that changed. ``touched``, when given, names every id that can
    differ (``tiers.JobTiers.touched_ids``: a state poll knows what it asked for and what left):
    only those are looked at, not every job."""
    if previous is None:
        return Changes()
    get = previous.get
    if touched is None:
        ids = [job_id for job_id, job in current.items() if get(job_id) is not job]
        ids += previous.keys() - current.keys()
    else:
        ids = list(touched)
    publications: list[Publication] = []
    notifications: list[Notification] = []
    for job_id in sorted(ids, key=_job_order):
        before, after = get(job_id), current.get(job_id)
        if after is None:
            if before is not None:
                publications.append(build_job_removed(before))
            continue
        if before is None:
            publications.append(build_job_submitted(after))
        elif before.state != after.state:
            publications.append(build_job_state_changed(before, after))
        else:
            continue
        if after.state in TERMINAL_JOB_STATES:
            note = build_job_notification(after)
            if note is not None:
                notifications.append(note)
    return Changes(tuple(publications), tuple(notifications))


def mark_of(node: Node) -> ResourceMark:
    return ResourceMark(node.cpu_load_percent, node.cpu_alloc_percent)


def _moved(before: float | None, after: float | None) -> bool:
    return before is not None and after is not None and abs(after - before) > RESOURCE_CHANGE_POINTS


def diff_nodes(
    previous: Mapping[str, Node] | None,
    current: Mapping[str, Node],
    marks: Mapping[str, ResourceMark],
) -> tuple[Changes, dict[str, ResourceMark]]:
    """Returns the changes and the new marks (pass them back in on the next call)."""
    if previous is None:
        return Changes(), {name: mark_of(node) for name, node in current.items()}
    new_marks = {name: marks.get(name) or mark_of(previous.get(name, node))
                 for name, node in current.items()}
    publications: list[Publication] = []
    notifications: list[Notification] = []
    for name in sorted(set(previous) | set(current)):
        before, after = previous.get(name), current.get(name)
        if after is None:  # so the name came from ``previous``
            publications.append(build_node_removed(previous[name]))
            continue
        if before is None:
            publications.append(build_node_added(after))
            new_marks[name] = mark_of(after)
            continue
        if before is after:  # not rebuilt by the parser (cache.RecordCache): nothing moved, and its
            continue  # mark was settled against these very figures by the call that returned ``marks``
        if before.state != after.state:
            publications.append(build_node_state_changed(before, after))
            note = build_node_notification(before, after)
            if note is not None:
                notifications.append(note)
        mark = new_marks[name]
        if _moved(mark.cpu_load_percent, after.cpu_load_percent) or _moved(
            mark.cpu_alloc_percent, after.cpu_alloc_percent
        ):
            publications.append(
                build_node_resource_change(after, mark.cpu_load_percent, mark.cpu_alloc_percent)
            )
            new_marks[name] = mark_of(after)
        elif mark.cpu_load_percent is None and after.cpu_load_percent is not None:
            new_marks[name] = ResourceMark(after.cpu_load_percent, mark.cpu_alloc_percent)
    return Changes(tuple(publications), tuple(notifications)), new_marks
