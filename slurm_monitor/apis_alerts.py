"""``POST /api/cluster/alerts/<alert_id>/acknowledge`` and ``/silence``: people acting on an
alert (staff). The alert id names its cluster (``b/nodes_down``; the primary's carry none);
what acknowledging and silencing do is ``slurm_monitor.alerting``'s."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from hub.rest.serializers import ErrorSerializer
from slurm_monitor import cluster_select
from slurm_monitor.apis import CLUSTER_PARAM, ClusterView, selected_cluster
from slurm_monitor.clusters import display, split_key

SILENCE_MAX_MINUTES = 7 * 24 * 60
# The wire id: the rule's name (a slug), then ":<partition or node>" for a per-target alert.
# [cluster/]rule[:target]: another cluster's alert ids carry its name (alerting: clusters.key),
# so ids never collide on the shared ``alerts`` channel.
ALERT_ID_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9_-]{0,39}/)?[-A-Za-z0-9_]{1,64}(:[^/]{1,200})?$"

_ALERT_ID = OpenApiParameter("alert_id", str, OpenApiParameter.PATH, pattern=ALERT_ID_PATTERN,
                             description="the alert's wire id: the rule's name, or name:target")
_ACKNOWLEDGED = inline_serializer("AlertAcknowledged", {
    "alert_id": serializers.CharField(),
    "acknowledged_by": serializers.CharField(allow_null=True),
    "acknowledged_at": serializers.DateTimeField(allow_null=True),
    "silenced_until": serializers.DateTimeField(allow_null=True),
    "cluster": serializers.CharField(),
    "status": serializers.ChoiceField(choices=["active", "acknowledged", "silenced"]),
})
_NO_ALERT = OpenApiResponse(ErrorSerializer, description="no raised, unresolved alert with this id")


class SilenceSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(min_value=1, max_value=SILENCE_MAX_MINUTES,
                                       help_text="how long the alert is not pushed (1 minute to 7 days)")


def _open_alert(request, alert_id: str):
    """The raised, unresolved alert with this wire id, or 404 (pending and resolved ones are not
    acted on: the former nobody was told about, the latter is over). The id names its cluster
    (``b/nodes_down``; the primary's carry none); a ``?cluster=`` naming another cluster finds
    nothing."""
    import re

    from slurm_monitor.models import Alert

    if not re.fullmatch(ALERT_ID_PATTERN, alert_id):
        raise NotFound("no active alert with this id")
    column = split_key(alert_id)[0]
    if "cluster" in request.query_params and selected_cluster(request).column != column:
        raise NotFound("no active alert with this id on this cluster")
    alert = (Alert.objects.filter(alert_id=alert_id[:300], cluster=column, raised_at__isnull=False,
                                  resolved_at__isnull=True)
             .order_by("-raised_at", "-id").first())
    if alert is None:
        raise NotFound("no active alert with this id")
    return alert


def _alert_answer(alert) -> dict:
    from slurm_monitor.alerting import acknowledged_payload
    from slurm_monitor.events import iso

    until = alert.silenced_until.timestamp() if alert.silenced_until else None
    return {**acknowledged_payload(alert), "silenced_until": iso(until),
            "cluster": display(alert.cluster, cluster_select.primary_name())}


class AlertAcknowledgeView(ClusterView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(parameters=[_ALERT_ID, CLUSTER_PARAM], request=None, responses={200: _ACKNOWLEDGED, 404: _NO_ALERT},
                   summary="Acknowledge an active alert (staff; idempotent: the first acknowledger stays); "
                           "every staff page hears alert_acknowledged on the alerts channel",
                   operation_id="cluster_alert_acknowledge")
    def post(self, request, alert_id: str):
        from slurm_monitor import alerting

        alert = _open_alert(request, alert_id)
        alerting.acknowledge_and_push(alert, request.user.get_username())
        return Response(_alert_answer(alert))


class AlertSilenceView(ClusterView):
    permission_classes = [permissions.IsAdminUser]

    @extend_schema(parameters=[_ALERT_ID, CLUSTER_PARAM], request=SilenceSerializer,
                   responses={200: _ACKNOWLEDGED, 404: _NO_ALERT},
                   summary="Silence an active alert for some minutes (staff; audited): it is not pushed "
                           "while silenced",
                   operation_id="cluster_alert_silence")
    def post(self, request, alert_id: str):
        from slurm_monitor import alerting

        body = SilenceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alert = _open_alert(request, alert_id)
        alerting.silence(alert, request.user.get_username(), body.validated_data["minutes"] * 60)
        return Response(_alert_answer(alert))
