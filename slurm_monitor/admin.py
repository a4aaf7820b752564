"""Read-only admin for what the monitor last saw: jobs, nodes and the stream heartbeats.

The monitor owns these rows (it rewrites them every poll), so the admin never edits them:
an operator looks, searches and filters; changes go through Slurm.

Alert rules are edited here (the monitor reads them every nodes poll). Alerts are the
monitor's too, except what people do to them: acknowledge, silence, lift a silence; each is
audited (AlertAudit, shown on the alert's page)."""

from __future__ import annotations

from django.contrib import admin, messages

from slurm_monitor import alerting
from slurm_monitor.models import (
    Alert,
    AlertAudit,
    AlertRule,
    ClusterJob,
    ClusterNode,
    ClusterStream,
    JobActionAudit,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.display(description="cluster", ordering="cluster")
def cluster_name(obj) -> str:
    """The row's cluster by name (the primary's column is "": ``slurm_monitor.clusters``)."""
    from slurm_monitor.cluster_select import primary_name
    from slurm_monitor.clusters import display

    return display(obj.cluster, primary_name())


@admin.register(ClusterJob)
class ClusterJobAdmin(ReadOnlyAdmin):
    list_display = ("job_id", cluster_name, "user", "partition", "state", "updated_at")
    list_filter = ("cluster", "state", "partition")
    search_fields = ("job_id", "user")
    ordering = ("-updated_at",)


@admin.register(ClusterNode)
class ClusterNodeAdmin(ReadOnlyAdmin):
    list_display = ("name", cluster_name, "state", "updated_at")
    list_filter = ("cluster", "state")
    search_fields = ("name",)
    ordering = ("name",)


@admin.register(ClusterStream)
class ClusterStreamAdmin(ReadOnlyAdmin):
    """Heartbeat rows (``beat:jobs`` ...) show each stream's cadence: the interval it polls at
    now, the configured one, and why they differ (``slurm_monitor.cadence``)."""

    list_display = ("name", "source", "updated_at", "interval", "base_interval", "cadence")

    @admin.display(description="interval (s)")
    def interval(self, obj: ClusterStream) -> object:
        return _beat(obj).get("interval", "")

    @admin.display(description="configured (s)")
    def base_interval(self, obj: ClusterStream) -> object:
        return _beat(obj).get("base_interval", "")

    @admin.display(description="cadence")
    def cadence(self, obj: ClusterStream) -> str:
        data = _beat(obj)
        reason, detail = data.get("reason") or "", data.get("detail") or ""
        return f"{reason}: {detail}" if reason and detail else str(reason)


def _beat(obj: ClusterStream) -> dict:
    """A heartbeat row's data; other ClusterStream rows (``metrics``, ``jobs``) show blanks."""
    return obj.data if obj.name.startswith("beat:") and isinstance(obj.data, dict) else {}


@admin.register(JobActionAudit)
class JobActionAuditAdmin(ReadOnlyAdmin):
    """Every cancel asked through the hub (slurm_monitor.cancel), refused ones included."""

    list_display = ("at", "actor", "action", "job_id", cluster_name, "job_user", "result", "detail")
    list_filter = ("cluster", "action", "result")
    search_fields = ("actor", "job_id", "job_user")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "severity", "metric", "scope", "target", "threshold", "clear_at",
                    "min_count", "duration_seconds")
    list_filter = ("enabled", "severity", "scope", "metric")
    list_editable = ("enabled",)
    search_fields = ("name", "description", "target")


class AlertAuditInline(admin.TabularInline):
    model = AlertAudit
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "action", "actor", "detail")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("alert_id", cluster_name, "status", "severity", "message", "raised_at", "acknowledged_by",
                    "silenced_until", "resolved_at")
    list_filter = ("cluster", "severity", "rule_name", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("alert_id", "message", "acknowledged_by")
    date_hierarchy = "pending_since"
    inlines = [AlertAuditInline]
    actions = ["acknowledge", "silence_hour", "silence_day", "lift_silence"]

    def has_acknowledge_permission(self, request) -> bool:
        """The alert fields stay read-only; acknowledging and silencing need "change alert"."""
        return request.user.has_perm("slurm_monitor.change_alert")

    @admin.display(description="status")
    def status(self, obj: Alert) -> str:
        return obj.status

    def _act(self, request, queryset, verb: str, do) -> None:
        done = sum(1 for alert in queryset if do(alert, request.user.get_username()))
        self.message_user(request, f"{done} alert(s) {verb}.")
        if done < len(queryset):
            self.message_user(request, f"{len(queryset) - done} left as they were "
                                       "(pending, resolved or already done).", messages.WARNING)

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request, queryset) -> None:
        self._act(request, queryset, "acknowledged", alerting.acknowledge_and_push)

    @admin.action(description="Silence selected alerts for 1 hour", permissions=["acknowledge"])
    def silence_hour(self, request, queryset) -> None:
        self._act(request, queryset, "silenced for 1 hour", lambda a, u: alerting.silence(a, u, 3600))

    @admin.action(description="Silence selected alerts for 24 hours", permissions=["acknowledge"])
    def silence_day(self, request, queryset) -> None:
        self._act(request, queryset, "silenced for 24 hours", lambda a, u: alerting.silence(a, u, 86400))

    @admin.action(description="Lift the silence of selected alerts", permissions=["acknowledge"])
    def lift_silence(self, request, queryset) -> None:
        self._act(request, queryset, "unsilenced", lambda a, u: alerting.silence(a, u, 0))
