"""The dashboard: one page at ``/`` (login required) that loads its state over REST and then
follows the hub over WebSocket (static/dashboard/dashboard.js), plus the static-file view
that lets daphne serve the page's JavaScript and CSS without a build or collectstatic step.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.views.decorators.http import require_GET
from django.views.static import serve


# The page's endpoints, in one place so the template and the tests agree. Optional ones
# (alerts: the active alerts, for staff) are offered only when some app routes them.
OPTIONAL_API = ("alerts",)
API_URLS = {
    "jobs": "/api/cluster/jobs?limit=5000",
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


@require_GET
def static_file(request: HttpRequest, path: str) -> HttpResponseBase:
    """Serve an app's static file (``hub/hub-client.js``, ``dashboard/...``) through Django.

    daphne serves no static files itself and the project has no build step, so Django does,
    from the apps' ``static/`` folders only (the staticfiles finders refuse paths that leave
    them). A front proxy or collectstatic can take over in production without page changes.
    """
    normalized = posixpath.normpath(path).lstrip("/")
    if normalized.startswith("..") or normalized != path.lstrip("/"):
        raise Http404("no such file")
    try:
        found = finders.find(normalized)
    except SuspiciousFileOperation:
        raise Http404("no such file") from None
    if not found or isinstance(found, list):
        raise Http404("no such file")
    found_path = Path(found)
    response = serve(request, found_path.name, document_root=str(found_path.parent))
    if found_path.suffix in {".js", ".mjs"}:
        response["Content-Type"] = "text/javascript; charset=utf-8"
    # Revalidate every time (a cheap 304 via Last-Modified): the modules import each other by
    # plain URL, so a cached old copy of one next to a new copy of another would break the page.
    response["Cache-Control"] = "no-cache"
    response["X-Content-Type-Options"] = "nosniff"
    return response
