"""``/api/cluster/...``: included at the site root; each route with and without a slash."""

from __future__ import annotations

from django.urls import path

from slurm_monitor import apis, apis_alerts, apis_cancel

urlpatterns = [
    path("api/cluster/jobs", apis.ClusterJobsView.as_view(), name="cluster-jobs"),
    path("api/cluster/jobs/", apis.ClusterJobsView.as_view(schema=None)),
    path("api/cluster/jobs/<str:job_id>", apis.ClusterJobDetailView.as_view(), name="cluster-job"),
    path("api/cluster/jobs/<str:job_id>/", apis.ClusterJobDetailView.as_view(schema=None)),
    path("api/cluster/jobs/<str:job_id>/watch", apis.ClusterJobWatchView.as_view(), name="cluster-job-watch"),
    path("api/cluster/jobs/<str:job_id>/watch/", apis.ClusterJobWatchView.as_view(schema=None)),
    path("api/cluster/jobs/<str:job_id>/cancel", apis_cancel.ClusterJobCancelView.as_view(), name="cluster-job-cancel"),
    path("api/cluster/jobs/<str:job_id>/cancel/", apis_cancel.ClusterJobCancelView.as_view(schema=None)),
    path("api/cluster/nodes", apis.ClusterNodesView.as_view(), name="cluster-nodes"),
    path("api/cluster/nodes/", apis.ClusterNodesView.as_view(schema=None)),
    path("api/cluster/metrics", apis.ClusterMetricsView.as_view(), name="cluster-metrics"),
    path("api/cluster/metrics/", apis.ClusterMetricsView.as_view(schema=None)),
    path("api/cluster/clusters", apis.ClustersView.as_view(), name="cluster-clusters"),
    path("api/cluster/clusters/", apis.ClustersView.as_view(schema=None)),
    path("api/cluster/alerts", apis.ClusterAlertsView.as_view(), name="cluster-alerts"),
    path("api/cluster/alerts/", apis.ClusterAlertsView.as_view(schema=None)),
    path("api/cluster/alerts/<path:alert_id>/acknowledge", apis_alerts.AlertAcknowledgeView.as_view(),
         name="cluster-alert-acknowledge"),
    path("api/cluster/alerts/<path:alert_id>/acknowledge/", apis_alerts.AlertAcknowledgeView.as_view(schema=None)),
    path("api/cluster/alerts/<path:alert_id>/silence", apis_alerts.AlertSilenceView.as_view(),
         name="cluster-alert-silence"),
    path("api/cluster/alerts/<path:alert_id>/silence/", apis_alerts.AlertSilenceView.as_view(schema=None)),
]
