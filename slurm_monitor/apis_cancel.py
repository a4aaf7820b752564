"""``POST /api/cluster/jobs/<job_id>/cancel``: the rules of who may cancel what (the command
itself, its audit and its safety are ``slurm_monitor.cancel``'s)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from hub.rest.serializers import ErrorSerializer
from slurm_monitor.apis import JOB_REF_PATTERN, ClusterView, job_owner_scope
from slurm_monitor.snapshot import TERMINAL_JOB_STATES as TERMINAL_STATES


_CANCELLED = inline_serializer("JobCancelRequested", {
    "job_id": serializers.CharField(), "status": serializers.ChoiceField(choices=["requested"])})


class ClusterJobCancelView(ClusterView):
    """Session callers need the CSRF token (DRF's SessionAuthentication enforces it)."""

    @extend_schema(parameters=[OpenApiParameter("job_id", str, OpenApiParameter.PATH, pattern=JOB_REF_PATTERN)],
                   request=None,
                   responses={202: _CANCELLED,
                              403: OpenApiResponse(ErrorSerializer, description="cancel_disabled (no "
                                                   "SLURM_MONITOR_CANCEL_COMMAND), or not your job"),
                              404: OpenApiResponse(ErrorSerializer, description="no such job (or not yours, "
                                                   "with HUB_PRIVATE_JOBS)"),
                              409: OpenApiResponse(ErrorSerializer, description="job_finished"),
                              502: OpenApiResponse(ErrorSerializer, description="cancel_failed: the command "
                                                   "refused; message says why")},
                   summary="Cancel a job (its owner, staff; audited). 202: asked; the CANCELLED "
                           "transition follows on the job's channels",
                   operation_id="cluster_job_cancel")
    def post(self, request, job_id: str):
        return cancel_response(request, job_id)


def cancel_response(request, job_id: str) -> Response:
    """The cancel endpoint's rules, in order: configured (403 ``cancel_disabled``), a job the
    caller may see (404, as the detail), theirs or staff (403), still in the queue and not
    final (409 ``job_finished``), then the command (502 ``cancel_failed``). Every refusal after
    the first is audited too."""
    import re

    from hub.identity import slurm_user_for
    from slurm_monitor import cancel
    from slurm_monitor.history import job_detail

    actor = request.user.get_username()
    template = cancel.configured()
    if template is None:
        return _error(403, "cancel_disabled", "cancelling jobs is not enabled on this hub "
                      "(SLURM_MONITOR_CANCEL_COMMAND)")
    detail = job_detail(job_id, owner=job_owner_scope(request.user)) if re.fullmatch(JOB_REF_PATTERN, job_id) \
        else None
    if detail is None:
        raise NotFound("no such job")
    job = detail["job"]
    target = job["display_id"] if re.fullmatch(JOB_REF_PATTERN, job["display_id"]) else job["job_id"]
    if not request.user.is_staff and job["user"] != slurm_user_for(request.user):
        cancel.audit(actor, target, job["user"], "forbidden")
        return _error(403, "permission_denied", "only the job's owner and staff may cancel it")
    if not job["in_queue"] or job["state"] in TERMINAL_STATES:
        cancel.audit(actor, target, job["user"], "finished", job["state"])
        return _error(409, "job_finished", f"job {target} has already ended ({job['state']})")
    outcome = cancel.cancel(template, target, job["user"], actor)
    if not outcome.ok:
        return _error(502, "cancel_failed", f"Slurm did not cancel job {target}: {outcome.detail}")
    return Response({"job_id": target, "status": "requested"}, status=202)


def _error(status: int, code: str, message: str) -> Response:
    return Response({"code": code, "message": message}, status=status)
