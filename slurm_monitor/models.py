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

from django.conf import settings
from django.db import models


class ClusterJob(models.Model):
    job_id = models.CharField(max_length=64, primary_key=True)  # clusters.key(cluster, Slurm id)
    cluster = models.CharField(max_length=40, blank=True, default="", db_index=True)  # "": the primary (clusters.py)
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
    name = models.CharField(max_length=200, primary_key=True)  # clusters.key(cluster, node name)
    cluster = models.CharField(max_length=40, blank=True, default="", db_index=True)  # "": the primary (clusters.py)
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

    name = models.CharField(max_length=64, primary_key=True)  # clusters.stream_key(cluster, stream)
    cluster = models.CharField(max_length=40, blank=True, default="", db_index=True)  # "": the primary (clusters.py)
    data = models.JSONField(default=dict)
    source = models.CharField(max_length=64, default="")
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.updated_at}"


class AlertRule(models.Model):
    """A rule the monitor evaluates every nodes poll (slurm_monitor.alerts: RuleSpec, step).
    Editable in admin; the defaults are created by migration 0002."""

    class Scope(models.TextChoices):
        CLUSTER = "cluster"
        PARTITION = "partition"
        NODE = "node"

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        CRITICAL = "critical"

    METRIC_CHOICES = [
        ("cpu_alloc_percent", "CPU allocation, % (count: allocated CPUs)"),
        ("memory_alloc_percent", "memory allocation, % (count: allocated MB)"),
        ("gpu_alloc_percent", "GPU allocation, % (count: allocated GPUs)"),
        ("nodes_down_percent", "nodes down, % (count: nodes down)"),
        ("nodes_unavailable_percent", "nodes down or drained, % (count: those nodes)"),
        ("jobs_pending", "pending jobs (count: the same)"),
    ]

    name = models.SlugField(max_length=64, unique=True, help_text="the alert_id on the wire")
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    metric = models.CharField(max_length=32, choices=METRIC_CHOICES)
    scope = models.CharField(max_length=10, choices=Scope.choices, default=Scope.CLUSTER)
    target = models.CharField(max_length=200, blank=True,
                              help_text="a partition or node name; empty: each one of the scope")
    threshold = models.FloatField(help_text="fires when the value is above this")
    clear_at = models.FloatField(null=True, blank=True,
                                 help_text="resolves at or below this (empty: the threshold)")
    min_count = models.PositiveIntegerField(
        default=0, help_text="and only when the absolute figure is at least this (CPUs, MB, GPUs, nodes, jobs)")
    duration_seconds = models.PositiveIntegerField(default=0, help_text="fires this long before it is raised")
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.WARNING)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Alert(models.Model):
    """One alert's lifecycle: pending (fired, ``raised_at`` empty), raised, acknowledged,
    silenced until a time, resolved. Written by the monitor (slurm_monitor.alerting) and by
    people (acknowledge, silence), every step in AlertAudit."""

    rule = models.ForeignKey(AlertRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    rule_name = models.CharField(max_length=64, db_index=True)  # kept if the rule goes
    target = models.CharField(max_length=200, blank=True)
    alert_id = models.CharField(max_length=300, db_index=True)
    cluster = models.CharField(max_length=40, blank=True, default="", db_index=True)  # "": the primary (clusters.py)
    severity = models.CharField(max_length=10)
    message = models.CharField(max_length=500, blank=True)
    value = models.FloatField(default=0.0)
    threshold = models.FloatField(default=0.0)
    pending_since = models.DateTimeField()
    raised_at = models.DateTimeField(null=True, blank=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True, db_index=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    silenced_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pending_since", "-id"]

    def __str__(self) -> str:
        return f"{self.alert_id} ({self.status})"

    @property
    def status(self) -> str:
        from django.utils import timezone

        if self.resolved_at is not None:
            return "resolved"
        if self.raised_at is None:
            return "pending"
        if self.silenced_until is not None and self.silenced_until > timezone.now():
            return "silenced"
        return "acknowledged" if self.acknowledged_at else "active"


class AlertAudit(models.Model):
    """Who did what to an alert, when: raised/resolved by the monitor, acknowledged or
    silenced by a person."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="audit")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=20)  # raised, resolved, acknowledged, silenced, unsilenced
    actor = models.CharField(max_length=150)  # a username, or "monitor"
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.alert_id} {self.action} by {self.actor}"


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


class JobWatch(models.Model):
    """An open job page's interest in a job (``POST /api/cluster/jobs/<id>/watch``), until
    ``expires_at``; the monitor polls the union of live rows once per cycle (``interest``)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="job_watches")
    job_id = models.CharField(max_length=64)  # the Slurm id
    expires_at = models.DateTimeField(db_index=True)
    cluster = models.CharField(max_length=40, blank=True, default="", db_index=True)  # "": the primary (clusters.py)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "cluster", "job_id"],
                                               name="one_watch_per_user_cluster_job")]

    def __str__(self) -> str:
        return f"{self.user_id} watches job {self.job_id} until {self.expires_at}"


class JobProgress(models.Model):
    """What the monitor last learned of a watched job (``start_estimate`` while pending,
    ``live_efficiency`` while running: ``GET /api/cluster/jobs/<id>`` serves both), and whether
    its finished-job usage was judged for the low-usage note (once per job). Goes with its job."""

    job = models.OneToOneField(ClusterJob, on_delete=models.CASCADE, primary_key=True, related_name="progress")
    start_estimate = models.DateTimeField(null=True, blank=True)
    live_efficiency = models.JSONField(null=True, blank=True)
    usage_checked = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"progress of job {self.job_id}"


class JobActionAudit(models.Model):
    """Who asked to do what to a job, and how it went: every cancel request through the hub,
    refused ones included (result ``ok``, ``failed``, ``forbidden``, ``finished``)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, db_index=True)  # the hub username; kept if the user goes
    job_id = models.CharField(max_length=32, db_index=True)  # the Slurm id
    cluster = models.CharField(max_length=40, blank=True, default="", db_index=True)  # "": the primary (clusters.py)
    job_user = models.CharField(max_length=150, blank=True)  # the job's Slurm user
    action = models.CharField(max_length=20)  # cancel
    result = models.CharField(max_length=32)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "job action audit entry"
        verbose_name_plural = "job action audit log"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.job_id}: {self.result}"
