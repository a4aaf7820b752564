"""REST: the latest cluster state, for a dashboard's first paint (live events follow).

    GET /api/cluster/jobs?user=alice&partition=gpu&state=RUNNING,PENDING&limit=100&offset=0
    GET /api/cluster/jobs?view=finished&job=10_1      (view: active, default | finished | all)
    GET /api/cluster/jobs?ordering=-submit_time&search=train&limit=50&offset=50
    GET /api/cluster/jobs?after=1234&limit=5000       (keyset pages by job id; answer's next)
    GET /api/cluster/jobs/<job_id>                    (one job: record, transitions, efficiency)
    POST /api/cluster/jobs/<job_id>/watch             (an open job page's interest: 204)
    POST /api/cluster/jobs/<job_id>/cancel            (its owner, staff; off unless configured)
    GET /api/cluster/nodes?state=DRAINED
    GET /api/cluster/metrics
    GET /api/cluster/alerts          (staff: the active alerts)
    POST /api/cluster/alerts/<alert_id>/acknowledge   (staff; pushes alert_acknowledged: apis_alerts)
    POST /api/cluster/alerts/<alert_id>/silence {"minutes": n}   (staff; 1..10080)
    GET /api/cluster/clusters        (every cluster the hub knows: name, channels, counts)

Every endpoint above but ``clusters`` takes ``?cluster=NAME`` (``slurm_monitor.clusters``):
absent, the primary cluster; a name that cannot be one is a 400, one no monitor ever saved
anything for a 404. Rows and answers name their ``cluster``, and ``position`` is keyed by that
cluster's real channels (``jobs.NAME``...), which clients take from ``/api/cluster/clusters``,
never build.

Authenticated users (alerts: staff, like the ``alerts`` channel). With ``HUB_PRIVATE_JOBS``
(Slurm's ``PrivateData=jobs``) a non-staff user gets only their own jobs; the ``user`` filter
narrows within them, never widens; another user's job is a 404, as an unknown one (its
existence is private too). Thin: validate the query, call one ``store_read`` reader. Answers are
``{"count", "results", "updated_at", "source", "position"}`` (``{"metrics", "updated_at",
"source", "position"}`` for metrics); ``updated_at`` is null until the monitor has saved that
stream once.

``position`` is ``{channel: {"offset", "epoch"} or null}``, read in the same snapshot as the
rows (PROTOCOL.md section 6): subscribe with ``since`` = offset, and reload if ``subscribed``
carries another epoch or ``recovered`` is false. The channel is the one whose events the rows
mirror: the cluster's ``jobs`` channel; with HUB_PRIVATE_JOBS a non-staff user's ``user:<name>`` (where their job
events reach them). null: the monitor has not published on it since it saved those rows, so
there is no position to resume from (subscribe, then reload). A stored epoch the sink could not
learn (the ``http`` sink, until the broadcast answer carries it) is filled in with this
process's epoch of the channel, provided its history still reaches the offset.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.rest.permissions import HubApiThrottle
from hub.rest.serializers import ErrorSerializer, StrictQuerySerializer
from slurm_monitor import cluster_select, store_read
from slurm_monitor.clusters import ClusterNameError, split_key

# Rows per /api/cluster/jobs request (over it: 400 naming ``limit``); the dashboard's first
# paint asks for this many. Page with ``offset`` beyond it.
JOB_PAGE_MAX = 5_000
STATE_PATTERN = r"^[A-Za-z_]{1,32}(,[A-Za-z_]{1,32}){0,31}$"
JOB_REF_PATTERN = r"^[0-9]{1,10}(_[0-9]{1,10})?$"


class JobQuerySerializer(StrictQuerySerializer):
    user = serializers.CharField(required=False, min_length=1, max_length=150)
    partition = serializers.CharField(required=False, min_length=1, max_length=200)
    state = serializers.RegexField(STATE_PATTERN, required=False,
                                   help_text="one state or a comma-separated list, e.g. RUNNING,PENDING")
    limit = serializers.IntegerField(required=False, default=1000, min_value=1,
                                     max_value=JOB_PAGE_MAX)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10**9)
    view = serializers.ChoiceField(choices=store_read.VIEWS, required=False, default="active",
                                   help_text="active: what squeue lists now; finished: jobs that ended; all")
    job = serializers.RegexField(JOB_REF_PATTERN, required=False,
                                 help_text="a job id, an array id, or one array task (10_1)")
    ordering = serializers.ChoiceField(
        choices=[p + k for k in store_read.JOB_ORDERINGS for p in ("", "-")], required=False,
        help_text="sort by this column ('-': descending), then by job id; default job_id (finished: -ended_at)")
    after = serializers.RegexField(r"^[0-9]{1,20}$", required=False,
                                   help_text="keyset paging by job id: the rows after this job id "
                                             "(with ordering job_id); the answer's next is the next cursor")
    search = serializers.CharField(required=False, min_length=1, max_length=100,
                                   help_text="text in the job's name, or the start of its id")

    def validate(self, attrs):
        order = attrs.get("ordering") or ("-ended_at" if attrs.get("view") == "finished" else "job_id")
        if "after" in attrs and order != "job_id":
            raise serializers.ValidationError({"after": "after pages by job id: use it with ordering=job_id"})
        return attrs


class NodeQuerySerializer(StrictQuerySerializer):
    state = serializers.RegexField(STATE_PATTERN, required=False)


_POSITION = serializers.DictField(
    child=inline_serializer("StreamPosition", {"offset": serializers.IntegerField(),
                                               "epoch": serializers.CharField(allow_null=True)},
                            allow_null=True),
    help_text="{channel: {offset, epoch} or null}, read with the rows: subscribe with since = offset")
_LIST = inline_serializer("ClusterList", {
    "position": _POSITION,
    "count": serializers.IntegerField(),
    "results": serializers.ListField(child=serializers.DictField()),
    "updated_at": serializers.DateTimeField(allow_null=True),
    "source": serializers.CharField(allow_null=True),
})
_JOB_LIST = inline_serializer("ClusterJobList", {
    "position": _POSITION,
    "count": serializers.IntegerField(help_text="rows passing the filters, over all pages"),
    "states": serializers.DictField(child=serializers.IntegerField(), help_text="{state: rows} of those"),
    "next": serializers.CharField(allow_null=True, help_text="after= cursor of the next page (ordering job_id)"),
    "results": serializers.ListField(child=serializers.DictField()),
    "updated_at": serializers.DateTimeField(allow_null=True),
    "source": serializers.CharField(allow_null=True),
})
_METRICS = inline_serializer("ClusterMetrics", {
    "position": _POSITION,
    "metrics": serializers.DictField(allow_null=True),
    "updated_at": serializers.DateTimeField(allow_null=True),
    "source": serializers.CharField(allow_null=True),
})


def _states(raw: str | None) -> list[str] | None:
    return [s.upper() for s in raw.split(",")] if raw else None


class ClusterView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [HubApiThrottle]  # HUB_API_RATE_LIMIT, like every hub REST call


CLUSTER_PARAM = OpenApiParameter("cluster", str, OpenApiParameter.QUERY, required=False,
                                 pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$",
                                 description="the cluster (GET /api/cluster/clusters); default the primary")


def selected_cluster(request) -> cluster_select.Selected:
    """The cluster ``?cluster=`` names: 400 for a name that cannot be one, 404 for one the hub
    has no rows for (before any other lookup, so a job id never answers for the wrong cluster)."""
    try:
        return cluster_select.select(request.query_params.get("cluster"))
    except ClusterNameError as exc:
        raise ValidationError({"cluster": [str(exc)]}) from None
    except cluster_select.UnknownCluster:
        raise NotFound("no such cluster") from None


def job_owner_scope(user) -> str | None:
    """The only owner whose jobs ``user`` may see, or None for every job: with
    HUB_PRIVATE_JOBS on, a non-staff user sees their own jobs only (PROTOCOL.md section 6),
    i.e. those of their Slurm user (``hub.identity.slurm_user_for``; "" for an account with
    none, which matches no job)."""
    from hub.conf import private_jobs
    from hub.identity import slurm_user_for

    if not private_jobs() or user.is_staff:
        return None
    return slurm_user_for(user)


def _fill_epochs(answer: dict) -> dict:
    """Stored epochs the sink could not learn: this process's epoch of the channel, where its
    history still reaches the stored offset (else the epoch stays unknown)."""
    unknown = {c: p["offset"] for c, p in answer.get("position", {}).items() if p and p["epoch"] is None}
    if not unknown:
        return answer
    from asgiref.sync import async_to_sync

    from hub.engine.node import get_node

    async def read() -> dict:
        return await get_node().history.positions(list(unknown))

    try:
        tops = async_to_sync(read)()
    except Exception:  # the hub's store is down: the epoch stays unknown
        return answer
    for channel, offset in unknown.items():
        top, epoch = tops.get(channel, (0, ""))
        if epoch and top >= offset:
            answer["position"][channel]["epoch"] = epoch
    return answer


def _job_channels(request, cluster: cluster_select.Selected) -> list[str]:
    # The channel the monitor publishes this user's jobs on: their Slurm user's, which may differ
    # from the username (hub.identity), so a page subscribing ``since`` the position follows it;
    # shared by every cluster (its events name theirs). Else the cluster's own jobs channel.
    owner = job_owner_scope(request.user)
    return [f"user:{owner}"] if owner is not None else [cluster.channel("jobs")]


class ClusterJobsView(ClusterView):
    @extend_schema(parameters=[JobQuerySerializer, CLUSTER_PARAM], responses={200: _JOB_LIST},
                   summary="Slurm jobs, live or finished (HUB_PRIVATE_JOBS: your own only, staff all)",
                   operation_id="cluster_jobs")
    def get(self, request):
        query = JobQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        cluster = selected_cluster(request)
        return Response(_fill_epochs(store_read.list_jobs(
            user=q.get("user"), partition=q.get("partition"), states=_states(q.get("state")),
            limit=q["limit"], offset=q["offset"], owner=job_owner_scope(request.user),
            view=q["view"], job=q.get("job"), channels=_job_channels(request, cluster),
            ordering=q.get("ordering"), after=q.get("after"), search=q.get("search"),
            cluster=cluster.column)))


_JOB_DETAIL = inline_serializer("ClusterJobDetail", {
    "job": serializers.DictField(help_text="the job's record, as in /api/cluster/jobs, with in_queue and ended_at"),
    "transitions": serializers.ListField(child=inline_serializer("JobTransition", {
        "state": serializers.CharField(), "at": serializers.DateTimeField()})),
    "accounting": serializers.DictField(allow_null=True, help_text="what sacct said, once the job ended"),
    "efficiency": serializers.DictField(allow_null=True,
                                        help_text="cpu, memory, gpu: used against requested; null when unknown"),
    "start_estimate": serializers.DateTimeField(allow_null=True, help_text="the scheduler's expected start "
                                                "while the job is pending and someone watches it; else null"),
    "live_efficiency": serializers.DictField(allow_null=True, help_text="efficiency's shape plus measured_at: "
                                             "the last figures sstat gave while someone watched it run"),
    "steps": serializers.ListField(child=serializers.DictField(),
                                   help_text="the job's steps as accounting recorded them ([] until sacct answered)"),
    "position": _POSITION,
})


class ClusterJobDetailView(ClusterView):
    @extend_schema(parameters=[OpenApiParameter("job_id", str, OpenApiParameter.PATH, pattern=JOB_REF_PATTERN,
                                                description="a job id or an array task (10_1)"), CLUSTER_PARAM],
                   responses={200: _JOB_DETAIL,
                              404: OpenApiResponse(ErrorSerializer, description="no such job (or not yours, "
                                                   "with HUB_PRIVATE_JOBS: a 404 too, so ids reveal nothing)")},
                   summary="One Slurm job, live or finished: record, state transitions, efficiency",
                   operation_id="cluster_job")
    def get(self, request, job_id: str):
        import re

        from slurm_monitor.history import job_detail

        cluster = selected_cluster(request)
        detail = None
        if re.fullmatch(JOB_REF_PATTERN, job_id):
            detail = job_detail(job_id, owner=job_owner_scope(request.user),
                                channels=_job_channels(request, cluster), cluster=cluster.column)
        if detail is None:
            raise NotFound("no such job")  # the same words whether it exists or is not yours
        return Response(_fill_epochs(detail))


class ClusterJobWatchView(ClusterView):
    @extend_schema(parameters=[OpenApiParameter("job_id", str, OpenApiParameter.PATH, pattern=JOB_REF_PATTERN),
                               CLUSTER_PARAM],
                   request=None,
                   responses={204: None, 404: OpenApiResponse(ErrorSerializer, description="as GET: unknown, "
                                                              "or not yours with HUB_PRIVATE_JOBS")},
                   summary="An open job page's interest: the monitor polls the job's start estimate "
                           "(pending) or live efficiency (running) for the next 120 s; call every 60 s",
                   operation_id="cluster_job_watch")
    def post(self, request, job_id: str):
        import re

        from slurm_monitor.history import visible_job
        from slurm_monitor.interest import record_watch

        cluster = selected_cluster(request)
        row = visible_job(job_id, owner=job_owner_scope(request.user), cluster=cluster.column) \
            if re.fullmatch(JOB_REF_PATTERN, job_id) else None
        if row is None:
            raise NotFound("no such job")  # the same words whether it exists or is not yours
        record_watch(request.user, split_key(row.job_id)[1], cluster=cluster.column)
        return Response(status=204)


class ClusterNodesView(ClusterView):
    @extend_schema(parameters=[NodeQuerySerializer, CLUSTER_PARAM], responses={200: _LIST},
                   summary="Slurm nodes as last polled",
                   operation_id="cluster_nodes")
    def get(self, request):
        query = NodeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        cluster = selected_cluster(request)
        return Response(_fill_epochs(store_read.list_nodes(
            states=_states(query.validated_data.get("state")), cluster=cluster.column,
            channels=[cluster.channel("nodes")])))


class ClusterMetricsView(ClusterView):
    @extend_schema(parameters=[CLUSTER_PARAM], responses={200: _METRICS},
                   summary="The latest metrics_update payload", operation_id="cluster_metrics")
    def get(self, request):
        cluster = selected_cluster(request)
        return Response(_fill_epochs(store_read.get_metrics(cluster.column, [cluster.channel("metrics")])))


class ClusterAlertsView(ClusterView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(parameters=[CLUSTER_PARAM], responses={200: _LIST},
                   summary="Active cluster alerts (each an alert event's payload)",
                   operation_id="cluster_alerts")
    def get(self, request):
        return Response(_fill_epochs(store_read.list_alerts(selected_cluster(request).column)))


_CLUSTERS = inline_serializer("Clusters", {
    "primary": serializers.CharField(help_text="the primary cluster's name (SLURM_MONITOR_CLUSTER)"),
    "clusters": serializers.ListField(child=inline_serializer("Cluster", {
        "name": serializers.CharField(), "primary": serializers.BooleanField(),
        "channels": serializers.DictField(child=serializers.CharField(),
                                          help_text="{jobs, nodes, metrics: the channel to subscribe to}"),
        "updated_at": serializers.DictField(child=serializers.DateTimeField(allow_null=True),
                                            help_text="{stream: when the monitor last saved it, or null}"),
        "jobs": serializers.IntegerField(help_text="queued jobs"), "nodes": serializers.IntegerField()})),
})


class ClustersView(ClusterView):
    @extend_schema(responses={200: _CLUSTERS},
                   summary="Every cluster the hub knows (the primary first): its channels, stream times, counts",
                   operation_id="cluster_clusters")
    def get(self, request):
        return Response(cluster_select.known())
