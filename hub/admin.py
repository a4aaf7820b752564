"""Admin for the hub's stats: live processes (with a chart of their stored time series), the
stats time series, the broadcast audit log, notifications, service accounts and the Slurm
monitor's poll figures. API tokens are the authtoken app's own admin (Auth Token > Tokens).
Stats, audit and service-account rows are written by the hub, so they are read-only here
(deletable, e.g. a dead process). Hub profiles (each person's Slurm user) are edited here by
staff with the hub profile permissions, standalone or inline on the user."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count
from django.utils.safestring import mark_safe

from hub.ops.charts import line_chart, rates
from hub.models import (BroadcastAudit, HubProcess, HubProfile, MonitorPollStats, Notification,
                        ServiceAccount, StatsSnapshot)

# Points drawn per chart: the newest snapshots (6 h at the default 60 s snapshot interval).
CHART_POINTS = 360


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(HubProcess)
class HubProcessAdmin(ReadOnlyAdmin):
    list_display = ("server", "alive", "host", "pid", "active_connections", "total_connections",
                    "subscriptions_total", "messages_received", "messages_sent", "errors_total",
                    "dropped_sends", "last_heartbeat", "started_at")
    search_fields = ("server", "host")
    readonly_fields = [f.name for f in HubProcess._meta.fields] + ["alive", "mean_publish_latency_ms",
                                                                   "activity_chart"]
    fieldsets = [
        (None, {"fields": ["server", "alive", "host", "pid", "started_at", "last_heartbeat"]}),
        ("Connections", {"fields": ["active_connections", "total_connections", "subscriptions_total",
                                    "subscriptions"]}),
        ("Traffic", {"fields": ["messages_received", "messages_sent", "publish_latency_count",
                                "mean_publish_latency_ms"]}),
        ("Problems", {"fields": ["errors_total", "errors", "dropped_sends", "slow_consumer_closes"]}),
        ("Over time", {"fields": ["activity_chart"]}),
    ]

    @admin.display(boolean=True, description="alive")
    def alive(self, obj: HubProcess) -> bool:
        return obj.is_alive

    @admin.display(description="mean publish latency (ms)")
    def mean_publish_latency_ms(self, obj: HubProcess) -> str:
        if not obj.publish_latency_count:
            return "-"
        return f"{1000 * obj.publish_latency_sum / obj.publish_latency_count:.2f}"

    @admin.display(description="stored snapshots")
    def activity_chart(self, obj: HubProcess) -> str:
        """Connections and messages/s (sent + received) from the newest snapshots; the SVG is
        built from numbers and escaped text only (hub.ops.charts), hence safe to mark so."""
        rows = list(obj.snapshots.order_by("-recorded_at")
                    .values_list("recorded_at", "active_connections", "messages_sent", "messages_received")
                    [:CHART_POINTS])[::-1]
        connections = [(at.timestamp(), float(conns)) for at, conns, _, _ in rows]
        messages_total = [(at.timestamp(), float(sent + received)) for at, _, sent, received in rows]
        return mark_safe(line_chart("Connections", connections) + "<br>"
                         + line_chart("Messages/s (sent + received)", rates(messages_total), "/s"))


@admin.register(StatsSnapshot)
class StatsSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("recorded_at", "process", "active_connections", "subscriptions_total",
                    "messages_received", "messages_sent", "errors_total", "dropped_sends",
                    "total_connections")
    list_filter = ("process",)
    date_hierarchy = "recorded_at"
    list_select_related = ("process",)


@admin.register(BroadcastAudit)
class BroadcastAuditAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "username", "target_kind", "target", "event_type", "size_bytes",
                    "result", "offset")
    list_filter = ("result", "target_kind")
    search_fields = ("username", "target", "event_type")
    date_hierarchy = "created_at"


class ScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request, model_admin):
        return [("user", "one user"), ("cluster", "cluster-wide")]

    def queryset(self, request, queryset):
        if self.value() == "user":
            return queryset.filter(username__isnull=False)
        if self.value() == "cluster":
            return queryset.filter(username__isnull=True)
        return queryset


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """A per-user row's ``read`` is its addressee's; a cluster-wide row (``username`` empty)
    is read per user (NotificationRead), so its own flag means nothing: the list shows
    "read by N" for it, and "mark read" (on the addressee's behalf) leaves it alone."""

    list_display = ("created", "addressee", "severity", "type", "title", "read_state")
    list_filter = (ScopeFilter, "read", "severity", "type")
    search_fields = ("username", "title", "message")
    date_hierarchy = "created"
    actions = ["mark_read"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(read_by=Count("reads"))

    @admin.display(description="addressee", ordering="username")
    def addressee(self, obj: Notification) -> str:
        return obj.username or "(cluster-wide)"

    @admin.display(description="read")
    def read_state(self, obj: Notification) -> str:
        if obj.username is None:
            count = getattr(obj, "read_by", None)
            return f"read by {obj.reads.count() if count is None else count}"
        return "yes" if obj.read else "no"

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # a new one is pushed live like any other
            from hub.notify.notifications import push_live, to_dict

            push_live(to_dict(obj))

    @admin.action(description="Mark selected notifications read for their addressee")
    def mark_read(self, request, queryset) -> None:
        cluster_wide = queryset.filter(username__isnull=True).count()
        changed = queryset.filter(username__isnull=False).update(read=True)
        self.message_user(request, f"{changed} notification(s) marked read for their addressee.")
        if cluster_wide:
            self.message_user(request, f"{cluster_wide} cluster-wide notification(s) left as they are: "
                                       "each user reads those for themselves.", messages.WARNING)


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ReadOnlyAdmin):
    """The accounts the hub created for a service (the Slurm monitor's). Read-only: the marker
    is what lets the monitor use the account, so it is made by the hub, never by hand."""

    list_display = ("user", "service", "created_at")
    search_fields = ("user__username", "service")
    list_select_related = ("user",)
    readonly_fields = ("user", "service", "created_at")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MonitorPollStats)
class MonitorPollStatsAdmin(ReadOnlyAdmin):
    list_display = ("stream", "polls_total", "errors_total", "mean_seconds", "last_poll_at", "last_ok")

    @admin.display(description="mean poll (s)")
    def mean_seconds(self, obj: MonitorPollStats) -> str:
        return f"{obj.duration_sum / obj.polls_total:.3f}" if obj.polls_total else "-"


@admin.register(HubProfile)
class HubProfileAdmin(admin.ModelAdmin):
    """The Slurm-user mapping (hub.identity). The model's ``clean`` refuses a Slurm user that
    is another account's; the user field is fixed once the profile exists."""

    list_display = ("user", "slurm_user", "updated_at")
    search_fields = ("user__username", "slurm_user")
    autocomplete_fields = ("user",)
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request, obj=None):
        return ("user", "updated_at") if obj is not None else ("updated_at",)


class HubProfileInline(admin.StackedInline):
    model = HubProfile
    can_delete = False
    fields = ("slurm_user",)
    verbose_name_plural = "Slurm user"

    def has_add_permission(self, request, obj=None) -> bool:
        return obj is not None and super().has_add_permission(request, obj)  # user saved first


def _add_profile_inline_to_user_admin() -> None:
    """Show the Slurm user on the user's own admin page (the auth app's UserAdmin, kept)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user_admin = admin.site._registry.get(user_model)
    if user_admin is None or HubProfileInline in user_admin.inlines:
        return
    user_admin_class = type(user_admin)
    admin.site.unregister(user_model)
    admin.site.register(user_model, type("UserAdmin", (user_admin_class,), {
        "inlines": (*user_admin_class.inlines, HubProfileInline)}))


_add_profile_inline_to_user_admin()


# --- notification rules and deliveries (issue 15) -----------------------------------------

from hub.models import NotificationDelivery, NotificationRule  # noqa: E402


@admin.register(NotificationRule)
class NotificationRuleAdmin(admin.ModelAdmin):
    list_display = ("user", "email", "webhook_url", "updated_at")
    search_fields = ("user__username", "email", "webhook_url")
    raw_id_fields = ("user",)


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    """The record of each e-mail/webhook sent (or retried, or failed); written by
    hub.notify.deliveries only."""

    list_display = ("notification", "username", "channel", "target", "status", "attempts",
                    "next_attempt_at", "sent_at")
    list_filter = ("status", "channel")
    search_fields = ("username", "target", "notification__title")
    readonly_fields = [f.name for f in NotificationDelivery._meta.fields]
