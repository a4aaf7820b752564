"""Admin for the hub's stats: live processes, the stats time series, the broadcast audit
log, notifications and the Slurm monitor's poll figures. API tokens are the authtoken app's
own admin (Auth Token > Tokens). Stats and audit rows are written by the hub, so they are
read-only here (deletable, e.g. a dead process). Hub profiles (each person's Slurm user) are
edited here by staff with the hub profile permissions, standalone or inline on the user."""

from __future__ import annotations

from django.contrib import admin

from hub.models import (BroadcastAudit, HubProcess, HubProfile, MonitorPollStats, Notification,
                        StatsSnapshot)


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
    readonly_fields = [f.name for f in HubProcess._meta.fields] + ["alive", "mean_publish_latency_ms"]
    fieldsets = [
        (None, {"fields": ["server", "alive", "host", "pid", "started_at", "last_heartbeat"]}),
        ("Connections", {"fields": ["active_connections", "total_connections", "subscriptions_total",
                                    "subscriptions"]}),
        ("Traffic", {"fields": ["messages_received", "messages_sent", "publish_latency_count",
                                "mean_publish_latency_ms"]}),
        ("Problems", {"fields": ["errors_total", "errors", "dropped_sends", "slow_consumer_closes"]}),
    ]

    @admin.display(boolean=True, description="alive")
    def alive(self, obj: HubProcess) -> bool:
        return obj.is_alive

    @admin.display(description="mean publish latency (ms)")
    def mean_publish_latency_ms(self, obj: HubProcess) -> str:
        if not obj.publish_latency_count:
            return "-"
        return f"{1000 * obj.publish_latency_sum / obj.publish_latency_count:.2f}"


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


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created", "username", "severity", "type", "title", "read")
    list_filter = ("read", "severity", "type")
    search_fields = ("username", "title", "message")
    date_hierarchy = "created"
    actions = ["mark_read"]

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # a new one is pushed live like any other
            from hub.notifications import push_live, to_dict

            push_live(to_dict(obj))

    @admin.action(description="Mark selected notifications read")
    def mark_read(self, request, queryset) -> None:
        queryset.update(read=True)


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
