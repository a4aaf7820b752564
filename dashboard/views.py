"""The dashboard: one page at ``/`` (login required) that loads its state over REST and then
follows the hub over WebSocket (static/dashboard/dashboard.js). Its JavaScript and CSS are
served by WhiteNoise from the apps' static folders (settings), with no build step.
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


def build_page_config(request: HttpRequest) -> dict:
    """What dashboard.js needs to start: who is looking (``user``: their Slurm user, which
    the jobs' ``user`` and "Mine" compare with), where the hub and the API are, and
    whether jobs are private (HUB_PRIVATE_JOBS: a non-staff user follows their own jobs on
    ``user:<name>``, as ``jobs`` is staff-only)."""
    from hub.conf import private_jobs
    from hub.identity import slurm_user_for

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
