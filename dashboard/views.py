"""The dashboard: one page at ``/`` (login required) that loads its state over REST and then
follows the hub over WebSocket (static/dashboard/dashboard.js), and the job page at
``/jobs/<id>`` (static/dashboard/jobpage.js). Their JavaScript and CSS are served by
WhiteNoise from the apps' static folders (settings), with no build step.
"""

from __future__ import annotations


from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_GET


# The page's endpoints, in one place so the template and the tests agree. Optional ones
# (alerts: the active alerts, for staff) are offered only when some app routes them.
OPTIONAL_API = ("alerts",)
API_URLS = {
    "jobs": "/api/cluster/jobs?view=active",
    "nodes": "/api/cluster/nodes",
    "metrics": "/api/cluster/metrics",
    "notifications": "/api/notifications",
    "alerts": "/api/cluster/alerts",
}


# How often a job page asked for before the monitor's first save of the jobs looks again.
FIRST_SAVE_RETRY_SECONDS = 5


def build_page_config(request: HttpRequest) -> dict:
    """What dashboard.js needs to start: who is looking (``user``: their Slurm user, which
    the jobs' ``user`` and "Mine" compare with), where the hub and the API are, and
    whether jobs are private (HUB_PRIVATE_JOBS: a non-staff user follows their own jobs on
    ``user:<name>``, as ``jobs`` is staff-only). ``clusters``: ``GET /api/cluster/clusters``'s
    answer, read here so the first paint needs no extra round trip: the page takes its
    channel names from it and the shown cluster from ``?cluster=`` (or the one remembered)."""
    from hub.conf import private_jobs
    from hub.identity import slurm_user_for
    from slurm_monitor.cluster_select import known

    user = request.user
    api = {name: url for name, url in API_URLS.items() if name not in OPTIONAL_API or _routed(url)}
    return {
        "user": slurm_user_for(user),  # "Mine": the Slurm user (hub.identity)
        "isStaff": bool(user.is_staff),
        "privateJobs": private_jobs(),
        "wsUrl": "/ws/",
        "api": api,
        "csrfToken": get_token(request),
        "logoutUrl": "/accounts/logout/",
        "clusters": known(),
    }


def _routed(url: str) -> bool:
    try:
        resolve(url.split("?", 1)[0])
    except Resolver404:
        return False
    return True


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/index.html", {"config": build_page_config(request)})


def build_job_page_config(request: HttpRequest, job_id: str) -> dict:
    """What jobpage.js needs: the dashboard's identity fields, the job's endpoints and whether
    cancelling is configured (the endpoint decides who may; the page only hides the button)."""
    from django.conf import settings

    from urllib.parse import urlencode

    from slurm_monitor.cluster_select import select

    base = f"/api/cluster/jobs/{job_id}"
    page = build_page_config(request)
    cluster = select(request.GET.get("cluster"))  # job_page checked it
    query = "" if cluster.primary else "?" + urlencode({"cluster": cluster.name})
    return {key: page[key] for key in ("user", "isStaff", "privateJobs", "wsUrl", "csrfToken", "logoutUrl")} | {
        "jobId": job_id,
        "cluster": cluster.name,
        "severalClusters": len(page["clusters"]["clusters"]) > 1,
        "api": {"detail": base + query, "cancel": f"{base}/cancel{query}", "watch": f"{base}/watch{query}"},
        "cancelEnabled": getattr(settings, "SLURM_MONITOR_CANCEL_COMMAND", None) is not None,
    }


@login_required
@require_GET
def job_page(request: HttpRequest, job_id: str) -> HttpResponse:
    """``/jobs/<id>`` (an id or an array task, ``10_1``): the job page, or a friendly 404 page
    for an id that is malformed, unknown, or another user's under HUB_PRIVATE_JOBS (the same
    page for all three, as the REST detail, so ids reveal nothing). ``?cluster=NAME``: the
    job of that cluster (an invalid or unknown cluster: the same 404 page). Before the
    monitor first saved the cluster's jobs, no id is known yet: that 404 page says so and
    looks again every FIRST_SAVE_RETRY_SECONDS (the id reveals nothing either way)."""
    import re

    from slurm_monitor.apis import JOB_REF_PATTERN, job_owner_scope
    from slurm_monitor.cluster_select import UnknownCluster, select
    from slurm_monitor.clusters import ClusterNameError, stream_key
    from slurm_monitor.history import job_detail
    from slurm_monitor.models import ClusterStream

    try:
        cluster = select(request.GET.get("cluster"))
    except (ClusterNameError, UnknownCluster):
        cluster = None
    found = cluster is not None and re.fullmatch(JOB_REF_PATTERN, job_id) and \
        job_detail(job_id, owner=job_owner_scope(request.user), cluster=cluster.column)
    if not found:
        shown = job_id if len(job_id) <= 40 else job_id[:40] + "…"
        unsaved = cluster is not None and not ClusterStream.objects.filter(
            name=stream_key(cluster.column, "jobs")).exists()
        return render(request, "dashboard/job_not_found.html",
                      {"job_id": shown, "user": request.user,
                       "retry_seconds": FIRST_SAVE_RETRY_SECONDS if unsaved else None}, status=404)
    return render(request, "dashboard/job.html", {"config": build_job_page_config(request, job_id)})
