"""The latest cluster state, written by the monitor and read by the REST API (initial state
for dashboards before live events take over). One row per job and per node, as the monitor
last saw them; ``ClusterStream`` holds the latest metrics and each stream's last update.
``record`` is the normalised snapshot record (``snapshot.Job`` / ``snapshot.Node`` fields).

History: a job ``squeue`` no longer lists keeps its row (``left_queue_at`` set, ``ended_at``
set if it was not already) for ``SLURM_MONITOR_HISTORY_DAYS``; ``accounting`` is what ``sacct``
said of it (``sacct.Accounting.as_dict()``). ``JobTransition`` holds the states the monitor saw,
bounded per job. ``StreamPosition`` is, per channel, the offset and epoch of the last publication
whose effect the saved rows include (PROTOCOL.md section 6, ``position``)."""

from __future__ import annotations

from django.db import models


class ClusterJob(models.Model):
    job_id = models.CharField(max_length=64, primary_key=True)
    user = models.CharField(max_length=150, db_index=True)
    partition = models.CharField(max_length=200, db_index=True)
    state = models.CharField(max_length=32, db_index=True)
    record = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)
    array_job_id = models.CharField(max_length=64, null=True, blank=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)  # null: not ended
    left_queue_at = models.DateTimeField(null=True, blank=True, db_index=True)  # null: squeue lists it
    accounting = models.JSONField(null=True, blank=True)
    accounting_tries = models.PositiveSmallIntegerField(default=0)

    class Meta:
        verbose_name = "Slurm job"

    def __str__(self) -> str:
        return f"job {self.job_id} ({self.state})"


class ClusterNode(models.Model):
    name = models.CharField(max_length=200, primary_key=True)
    state = models.CharField(max_length=32, db_index=True)
    record = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Slurm node"

    def __str__(self) -> str:
        return f"node {self.name} ({self.state})"


class ClusterStream(models.Model):
    """``jobs`` / ``nodes`` / ``metrics``: when the monitor last saved it; ``data`` is the
    latest metrics_update payload for ``metrics``."""

    name = models.CharField(max_length=16, primary_key=True)
    data = models.JSONField(default=dict)
    source = models.CharField(max_length=64, default="")
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.updated_at}"


class JobTransition(models.Model):
    """One state the monitor saw a job enter (the newest ``store.MAX_TRANSITIONS`` kept)."""

    job = models.ForeignKey(ClusterJob, on_delete=models.CASCADE, related_name="transitions")
    state = models.CharField(max_length=32)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["job", "at"])]

    def __str__(self) -> str:
        return f"job {self.job_id} {self.state} @ {self.at}"


class StreamPosition(models.Model):
    """A channel's offset and epoch when the monitor last saved the rows it mirrors; ``epoch``
    is "" when the sink could not tell it."""

    channel = models.CharField(max_length=200, primary_key=True)
    offset = models.BigIntegerField()
    epoch = models.CharField(max_length=64, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.channel} @ {self.offset} ({self.epoch or 'epoch unknown'})"
