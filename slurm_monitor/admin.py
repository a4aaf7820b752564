"""Read-only admin for what the monitor last saw: jobs, nodes and the stream heartbeats.

The monitor owns these rows (it rewrites them every poll), so the admin never edits them:
an operator looks, searches and filters; changes go through Slurm."""

from __future__ import annotations

from django.contrib import admin

from slurm_monitor.models import ClusterJob, ClusterNode, ClusterStream


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ClusterJob)
class ClusterJobAdmin(ReadOnlyAdmin):
    list_display = ("job_id", "user", "partition", "state", "updated_at")
    list_filter = ("state", "partition")
    search_fields = ("job_id", "user")
    ordering = ("-updated_at",)


@admin.register(ClusterNode)
class ClusterNodeAdmin(ReadOnlyAdmin):
    list_display = ("name", "state", "updated_at")
    list_filter = ("state",)
    search_fields = ("name",)
    ordering = ("name",)


@admin.register(ClusterStream)
class ClusterStreamAdmin(ReadOnlyAdmin):
    list_display = ("name", "source", "updated_at")
