"""The latest cluster state, written by the monitor and read by the REST API (initial state
for dashboards before live events take over). One row per job and per node, as the monitor
last saw them; ``ClusterStream`` holds the latest metrics and each stream's last update.
``record`` is the normalised snapshot record (``snapshot.Job`` / ``snapshot.Node`` fields)."""

from __future__ import annotations

from django.db import models


class ClusterJob(models.Model):
    job_id = models.CharField(max_length=64, primary_key=True)
    user = models.CharField(max_length=150, db_index=True)
    partition = models.CharField(max_length=200, db_index=True)
    state = models.CharField(max_length=32, db_index=True)
    record = models.JSONField()
    updated_at = models.DateTimeField(auto_now=True)

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
