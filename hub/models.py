"""What the hub persists: process stats (live row + time series), the broadcast audit log,
notifications (per user and cluster-wide), service-account markers, the Slurm monitor's
poll figures, and each person's Slurm user (``HubProfile``).

Live hub state (sockets, subscriptions, history) is NOT here: it lives in the engine
(memory or Redis). These tables are what outlives a process and what the admin shows.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from hub.socket.protocol import is_valid_username
from realtime_project.env import env_number

ALIVE_SECONDS_DEFAULT = 30.0


def alive_within_seconds() -> float:
    """HUB_PROCESS_ALIVE_SECONDS: a process is alive while its heartbeat is younger."""
    return env_number("HUB_PROCESS_ALIVE_SECONDS", ALIVE_SECONDS_DEFAULT, 0.0, exclusive=True)


class HubProcess(models.Model):
    """One hub server process, upserted by ``hub.ops.stats_recorder.record`` every few seconds.

    ``alive`` is derived: the last heartbeat is younger than HUB_PROCESS_ALIVE_SECONDS.
    """

    server = models.CharField(max_length=200, unique=True)
    host = models.CharField(max_length=255, blank=True)
    pid = models.IntegerField(default=0)
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField(db_index=True)
    active_connections = models.IntegerField(default=0)
    total_connections = models.BigIntegerField(default=0)
    subscriptions_total = models.IntegerField(default=0)
    subscriptions = models.JSONField(default=dict, blank=True)  # channel -> local subscribers
    messages_sent = models.BigIntegerField(default=0)
    messages_received = models.BigIntegerField(default=0)
    errors_total = models.BigIntegerField(default=0)
    errors = models.JSONField(default=dict, blank=True)  # error code -> count
    dropped_sends = models.BigIntegerField(default=0)
    slow_consumer_closes = models.BigIntegerField(default=0)
    publish_latency_sum = models.FloatField(default=0.0)
    publish_latency_count = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["server"]
        verbose_name = "hub process"
        verbose_name_plural = "hub processes"

    def __str__(self) -> str:
        return self.server

    @property
    def is_alive(self) -> bool:
        return time.time() - self.last_heartbeat.timestamp() <= alive_within_seconds()


class StatsSnapshot(models.Model):
    """A point of the per-process time series; kept HUB_STATS_RETENTION_DAYS days."""

    process = models.ForeignKey(HubProcess, on_delete=models.CASCADE, related_name="snapshots")
    recorded_at = models.DateTimeField(db_index=True)
    active_connections = models.IntegerField(default=0)
    total_connections = models.BigIntegerField(default=0)
    subscriptions_total = models.IntegerField(default=0)
    messages_sent = models.BigIntegerField(default=0)
    messages_received = models.BigIntegerField(default=0)
    errors_total = models.BigIntegerField(default=0)
    dropped_sends = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-recorded_at"]
        indexes = [models.Index(fields=["process", "-recorded_at"])]
        get_latest_by = "recorded_at"

    def __str__(self) -> str:
        return f"{self.process_id} @ {self.recorded_at:%Y-%m-%d %H:%M:%S}"


class BroadcastAudit(models.Model):
    """Every REST broadcast attempt, whatever its result. Carries the ``hub.broadcast``
    permission that ``POST /api/broadcast`` requires."""

    class Target(models.TextChoices):
        CHANNEL = "channel"
        ALL = "all"
        USER = "user"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    username = models.CharField(max_length=150, db_index=True)  # who; kept if the user goes
    target_kind = models.CharField(max_length=10, choices=Target.choices)
    target = models.CharField(max_length=200)  # channel name, "all", or the recipient username
    event_type = models.CharField(max_length=100)
    size_bytes = models.IntegerField(default=0)  # the encoded message data
    result = models.CharField(max_length=40)  # "ok" or an error code
    offset = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("broadcast", "Can broadcast through the hub")]
        verbose_name = "broadcast audit entry"
        verbose_name_plural = "broadcast audit log"

    def __str__(self) -> str:
        return f"{self.username} -> {self.target_kind}:{self.target} {self.event_type} [{self.result}]"


class Notification(models.Model):
    """A notification for one user, by username (so the Slurm monitor can notify job owners
    before they ever log in to the hub), or, with ``username`` null, a cluster-wide one (a
    node down, maintenance) that every authenticated user lists.

    ``read`` is the addressee's read state of a per-user row; a cluster-wide row has one read
    state per user, kept in ``NotificationRead`` (its own ``read`` stays false)."""

    class Severity(models.TextChoices):
        INFO = "info"
        SUCCESS = "success"
        WARNING = "warning"
        ERROR = "error"
        CRITICAL = "critical"

    username = models.CharField(max_length=150, db_index=True, null=True, blank=True,
                                help_text="the addressee; empty: cluster-wide (every user)")
    type = models.CharField(max_length=100)
    title = models.CharField(max_length=200)
    message = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    data = models.JSONField(default=dict, blank=True)
    read = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["read", "-created", "-id"]  # unread first, newest first
        indexes = [models.Index(fields=["username", "read", "-created"])]

    def __str__(self) -> str:
        return f"{self.username or '(cluster-wide)'}: {self.title}"


class NotificationRead(models.Model):
    """One user has read one cluster-wide notification (per-user rows use ``read``)."""

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE, related_name="reads")
    username = models.CharField(max_length=150)
    read_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notification", "username"],
                                               name="hub_notificationread_once_per_user")]
        indexes = [models.Index(fields=["username", "notification"])]

    def __str__(self) -> str:
        return f"{self.username} read {self.notification_id}"


class ServiceAccount(models.Model):
    """The marker of an account the hub created for a service (the Slurm monitor's): the
    monitor uses an account only when it carries this marker, so it never adopts an existing
    person's account that happens to have the configured name."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="hub_service_account")
    service = models.CharField(max_length=100, help_text="what uses it, e.g. slurm-monitor")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.service} service account ({self.user_id})"


class MonitorPollStats(models.Model):
    """Cumulative poll figures of one Slurm monitor stream (jobs, nodes, ...), written by the
    monitor process through ``hub.ops.metrics.record_poll`` and read by every hub's /metrics."""

    stream = models.CharField(max_length=100, unique=True)
    polls_total = models.BigIntegerField(default=0)
    errors_total = models.BigIntegerField(default=0)
    duration_sum = models.FloatField(default=0.0)
    bucket_counts = models.JSONField(default=list, blank=True)  # per POLL_BUCKETS_SECONDS, +Inf last
    last_poll_at = models.DateTimeField(null=True, blank=True)
    last_ok = models.BooleanField(default=True)

    class Meta:
        ordering = ["stream"]
        verbose_name = "Slurm monitor poll stats"
        verbose_name_plural = "Slurm monitor poll stats"

    def __str__(self) -> str:
        return self.stream


class HubProfile(models.Model):
    """What the hub knows about a person beyond Django's user: the Slurm user they are
    (``slurm_user``; blank: the same as the Django username). Read it through
    ``hub.identity.slurm_user_for``, never directly. Set by staff in admin or by a site
    login hook (REMOTE_USER header, LDAP attribute, OIDC claim: ``realtime_project.logins``),
    never by the user: no REST or page road writes it.

    A Slurm user belongs to one account at most: a non-blank value is unique here, and
    ``clean`` (admin) and ``hub.identity.set_slurm_user`` (the hooks) also refuse one that is
    another account's effective Slurm user (its mapping, or its username when unmapped)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="hub_profile")
    slurm_user = models.CharField(
        max_length=150, blank=True, default="",
        help_text="the Slurm user this person is (jobs, user:<name>, notifications); "
                  "blank: the same as the username")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["slurm_user"], condition=~models.Q(slurm_user=""),
            name="hub_profile_slurm_user_unique")]
        verbose_name = "hub profile"

    def __str__(self) -> str:
        return f"{self.user} -> {self.slurm_user or '(username)'}"

    def clean(self) -> None:
        user = getattr(self, "user", None)  # unset when the form's user field failed
        problem = user is not None and slurm_user_problem(user, self.slurm_user)
        if problem:
            raise ValidationError({"slurm_user": problem})


def slurm_user_problem(user, slurm_user: str) -> str | None:
    """Why ``user`` may not have the mapping ``slurm_user`` (blank: their username), or None.
    Refused: a name ``user:<name>`` cannot carry, or one that is already another account's
    effective Slurm user. (Here, beside HubProfile, so the model's own ``clean`` needs no
    import from hub.identity, which reads the model: no cycle.)"""
    from django.contrib.auth import get_user_model  # app-loading: the user model is swappable

    effective = slurm_user or user.get_username()
    if slurm_user and not is_valid_username(slurm_user):
        return "at most 150 letters, digits and . @ + - _"
    others = HubProfile.objects.exclude(user_id=user.pk)
    if others.filter(slurm_user=effective).exists():
        return f"the Slurm user {effective!r} is already mapped to another account"
    mapped_away = others.exclude(slurm_user="").values("user_id")
    unmapped_namesake = (get_user_model().objects.exclude(pk=user.pk)
                         .filter(**{get_user_model().USERNAME_FIELD: effective})
                         .filter(~models.Q(pk__in=mapped_away)))
    if unmapped_namesake.exists():
        return (f"{effective!r} is another account's username (and so its Slurm user): "
                "map that account to another Slurm user first")
    return None


class NotificationRule(models.Model):
    """One person's choice of what to be told and where (issue 15); ``hub.notify.notification_rules``
    reads, validates and defaults it. ``channels`` maps a *kind* (``job_completed``,
    ``job_failed``, ``job_cancelled``, ``job_time_limit``, ``job_node_down``, ``job_low_usage``, ``node_down``,
    ``maintenance``,
    ``other``) to the channels it goes to (``page``, ``browser``, ``email``, ``webhook``); a
    kind missing from the map keeps its default. No row: the defaults."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="hub_notification_rule")
    channels = models.JSONField(default=dict, blank=True,
                                help_text="kind -> list of channels (page, browser, email, webhook)")
    email = models.EmailField(blank=True, default="",
                              help_text="where e-mail goes; blank: the account's own address")
    webhook_url = models.URLField(max_length=500, blank=True, default="",
                                  help_text="Slack/Teams/Mattermost-compatible incoming webhook (http/https)")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "notification rule"

    def __str__(self) -> str:
        return f"notification rule of {self.user_id}"


class NotificationDelivery(models.Model):
    """One notification sent (or to be sent) once to one target over one server-side channel
    (e-mail or webhook); written by ``hub.notify.deliveries``. Unique per (notification, channel,
    target): a second enqueue of the same thing is a no-op, so each is delivered once."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SENT = "sent"
        FAILED = "failed"

    notification = models.ForeignKey(Notification, on_delete=models.CASCADE,
                                      related_name="deliveries")
    username = models.CharField(max_length=150, help_text="the Django user it is for")
    channel = models.CharField(max_length=20)
    target = models.CharField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [models.UniqueConstraint(fields=["notification", "channel", "target"],
                                               name="hub_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        verbose_name_plural = "notification deliveries"

    def __str__(self) -> str:
        return f"{self.channel} to {self.target} [{self.status}]"
