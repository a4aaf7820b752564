"""REST: the latest cluster state, for a dashboard's first paint (live events follow).

    GET /api/cluster/jobs?user=alice&partition=gpu&state=RUNNING,PENDING&limit=100&offset=0
    GET /api/cluster/nodes?state=DRAINED
    GET /api/cluster/metrics
    GET /api/cluster/alerts          (staff: the active alerts)

Authenticated users (alerts: staff, like the ``alerts`` channel). With ``HUB_PRIVATE_JOBS``
(Slurm's ``PrivateData=jobs``) a non-staff user gets only their own jobs; the ``user`` filter
narrows within them, never widens. Thin: validate the query, call one ``store`` reader. Answers are
``{"count", "results", "updated_at", "source"}`` (``{"metrics", "updated_at", "source"}`` for
metrics); ``updated_at`` is null until the monitor has saved that stream once.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.permissions import HubApiThrottle
from slurm_monitor import store

# Rows per /api/cluster/jobs request (over it: 400 naming ``limit``); the dashboard's first
# paint asks for this many. Page with ``offset`` beyond it.
JOB_PAGE_MAX = 5_000
STATE_PATTERN = r"^[A-Za-z_]{1,32}(,[A-Za-z_]{1,32}){0,31}$"


class JobQuerySerializer(serializers.Serializer):
    user = serializers.CharField(required=False, min_length=1, max_length=150)
    partition = serializers.CharField(required=False, min_length=1, max_length=200)
    state = serializers.RegexField(STATE_PATTERN, required=False,
                                   help_text="one state or a comma-separated list, e.g. RUNNING,PENDING")
    limit = serializers.IntegerField(required=False, default=1000, min_value=1,
                                     max_value=JOB_PAGE_MAX)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10**9)


class NodeQuerySerializer(serializers.Serializer):
    state = serializers.RegexField(STATE_PATTERN, required=False)


_LIST = inline_serializer("ClusterList", {
    "count": serializers.IntegerField(),
    "results": serializers.ListField(child=serializers.DictField()),
    "updated_at": serializers.DateTimeField(allow_null=True),
    "source": serializers.CharField(allow_null=True),
})
_METRICS = inline_serializer("ClusterMetrics", {
    "metrics": serializers.DictField(allow_null=True),
    "updated_at": serializers.DateTimeField(allow_null=True),
    "source": serializers.CharField(allow_null=True),
})


def _states(raw: str | None) -> list[str] | None:
    return [s.upper() for s in raw.split(",")] if raw else None


class ClusterView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [HubApiThrottle]  # HUB_API_RATE_LIMIT, like every hub REST call


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


class ClusterJobsView(ClusterView):
    @extend_schema(parameters=[JobQuerySerializer], responses={200: _LIST},
                   summary="Slurm jobs as last polled (HUB_PRIVATE_JOBS: your own only, staff all)",
                   operation_id="cluster_jobs")
    def get(self, request):
        query = JobQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        return Response(store.list_jobs(user=q.get("user"), partition=q.get("partition"),
                                        states=_states(q.get("state")), limit=q["limit"],
                                        offset=q["offset"], owner=job_owner_scope(request.user)))


class ClusterNodesView(ClusterView):
    @extend_schema(parameters=[NodeQuerySerializer], responses={200: _LIST},
                   summary="Slurm nodes as last polled",
                   operation_id="cluster_nodes")
    def get(self, request):
        query = NodeQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(store.list_nodes(states=_states(query.validated_data.get("state"))))


class ClusterMetricsView(ClusterView):
    @extend_schema(responses={200: _METRICS}, summary="The latest metrics_update payload",
                   operation_id="cluster_metrics")
    def get(self, request):
        return Response(store.get_metrics())


class ClusterAlertsView(ClusterView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(responses={200: _LIST},
                   summary="Active cluster alerts (each an alert event's payload)",
                   operation_id="cluster_alerts")
    def get(self, request):
        return Response(store.list_alerts())
