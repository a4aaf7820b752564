"""``POST /api/cluster/jobs/<job_id>/cancel``: the rules of who may cancel what (the command
itself, its audit and its safety are ``slurm_monitor.cancel``'s)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from hub.rest.serializers import ErrorSerializer
from slurm_monitor.apis import CLUSTER_PARAM, JOB_REF_PATTERN, ClusterView, job_owner_scope, selected_cluster
from slurm_monitor.snapshot import TERMINAL_JOB_STATES as TERMINAL_STATES


_CANCELLED = inline_serializer("JobCancelRequested", {
    "job_id": serializers.CharField(), "cluster": serializers.CharField(),
    "status": serializers.ChoiceField(choices=["requested"])})


class ClusterJobCancelView(ClusterView):
    """Session callers need the CSRF token (DRF's SessionAuthentication enforces it)."""

    @extend_schema(parameters=[OpenApiParameter("job_id", str, OpenApiParameter.PATH, pattern=JOB_REF_PATTERN),
                               CLUSTER_PARAM],
                   request=None,
                   responses={202: _CANCELLED,
                              403: OpenApiResponse(ErrorSerializer, description="cancel_disabled (no "
                                                   "SLURM_MONITOR_CANCEL_COMMAND), or not your job"),
                              404: OpenApiResponse(ErrorSerializer, description="no such job (or not yours, "
                                                   "with HUB_PRIVATE_JOBS)"),
                              409: OpenApiResponse(ErrorSerializer, description="job_finished; needs_cluster: "
                                                   "a job of another cluster, and the command has no {cluster}"),
                              502: OpenApiResponse(ErrorSerializer, description="cancel_failed: the command "
                                                   "refused; message says why")},
                   summary="Cancel a job (its owner, staff; audited). 202: asked; the CANCELLED "
                           "transition follows on the job's channels",
                   operation_id="cluster_job_cancel")
    def post(self, request, job_id: str):
        return cancel_response(request, job_id)


def cancel_response(request, job_id: str) -> Response:
    """The cancel endpoint's rules, in order: configured (403 ``cancel_disabled``), the cluster
    (``?cluster=``: 400/404 as every cluster endpoint), a job the caller may see there (404, as
    the detail), theirs or staff (403), still in the queue and not final (409
    ``job_finished``), a command that can reach its cluster (409 ``needs_cluster``: off the
    primary, the command must say ``{cluster}``), then the command (502 ``cancel_failed``).
    Every refusal after the job is found is audited too, with its cluster."""
    import re

    from hub.identity import slurm_user_for
    from slurm_monitor import cancel
    from slurm_monitor.history import job_detail

    actor = request.user.get_username()
    template = cancel.configured()
    if template is None:
        return _error(403, "cancel_disabled", "cancelling jobs is not enabled on this hub "
                      "(SLURM_MONITOR_CANCEL_COMMAND)")
    cluster = selected_cluster(request)
    detail = job_detail(job_id, owner=job_owner_scope(request.user), cluster=cluster.column) \
        if re.fullmatch(JOB_REF_PATTERN, job_id) else None
    if detail is None:
        raise NotFound("no such job")
    job = detail["job"]
    target = job["display_id"] if re.fullmatch(JOB_REF_PATTERN, job["display_id"]) else job["job_id"]
    if not request.user.is_staff and job["user"] != slurm_user_for(request.user):
        cancel.audit(actor, target, job["user"], "forbidden", cluster=cluster.column)
        return _error(403, "permission_denied", "only the job's owner and staff may cancel it")
    if not job["in_queue"] or job["state"] in TERMINAL_STATES:
        cancel.audit(actor, target, job["user"], "finished", job["state"], cluster=cluster.column)
        return _error(409, "job_finished", f"job {target} has already ended ({job['state']})")
    if not cluster.primary and not cancel.names_cluster(template):
        # The command would run against the default cluster of the hub's Slurm client: the same
        # id there is another job. Refuse rather than cancel someone else's work.
        cancel.audit(actor, target, job["user"], "needs_cluster", "SLURM_MONITOR_CANCEL_COMMAND has no {cluster}",
                     cluster=cluster.column)
        return _error(409, "needs_cluster", f"cannot cancel job {target} on cluster {cluster.name}: the hub's "
                      "cancel command (SLURM_MONITOR_CANCEL_COMMAND) does not name a cluster ({cluster})")
    outcome = cancel.cancel(template, target, job["user"], actor, cluster.name, cluster.column)
    if not outcome.ok:
        return _error(502, "cancel_failed", f"Slurm did not cancel job {target}: {outcome.detail}")
    return Response({"job_id": target, "cluster": cluster.name, "status": "requested"}, status=202)


def _error(status: int, code: str, message: str) -> Response:
    return Response({"code": code, "message": message}, status=status)
