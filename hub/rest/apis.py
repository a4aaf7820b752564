"""REST views (PROTOCOL.md section 6). Thin: parse input, call one service or selector,
format output. Errors are raised and shaped by ``hub.rest.apis_errors``.

Reads of live hub state go through ``hub.rest.selectors`` (async) with a deadline, so a dead
Redis answers 503 in about SELECTOR_TIMEOUT_SECONDS instead of hanging the request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import DatabaseError, connection
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.throttling import BaseThrottle
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.rest import broadcasting
from hub.notify import notifications
from hub.rest import serializers as s
from hub.rest.apis_errors import FieldError
from hub.conf import get_policies
from hub.engine.contracts import CALL_DEADLINE_SECONDS
from hub.engine.errors import HubUnavailable
from hub.identity import slurm_user_for
from hub.rest.parsers import HubJSONParser
from hub.rest.permissions import BROADCAST_PERMISSION, HealthThrottle, HubApiThrottle, can_notify_others
from hub.policies import Principal
from hub.socket.protocol import is_valid_channel, is_valid_client_id, utc_timestamp

SELECTOR_TIMEOUT_SECONDS = CALL_DEADLINE_SECONDS  # the engine's one deadline (hub.engine.contracts)
MAX_DB_ID = 2**63 - 1
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"

_ERROR_TEXT = {
    400: "invalid input (the body names the field)", 401: "no or bad credentials",
    403: "not allowed", 404: "no such object", 405: "method not allowed",
    413: "request too large", 415: "body must be application/json", 429: "rate limited",
    503: "a backing service (Redis, the database) is down",
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(s.ErrorSerializer, description=_ERROR_TEXT[code])
            for code in (*codes, 405, 429)}


def call_selector(name: str, *args: Any) -> Any:
    """Run ``hub.rest.selectors.<name>(*args)`` from a sync view, bounded in time."""
    from hub.rest import selectors

    async def bounded():
        try:
            return await asyncio.wait_for(getattr(selectors, name)(*args), SELECTOR_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            raise HubUnavailable("hub", f"no answer within {SELECTOR_TIMEOUT_SECONDS:g}s") from None

    return async_to_sync(bounded)()


class HubAPIView(APIView):
    throttle_classes = [HubApiThrottle]
    parser_classes = [HubJSONParser]  # 400 for deep nesting and lone surrogates


# --- broadcast -----------------------------------------------------------------------------

class BroadcastThrottle(BaseThrottle):
    """HUB_API_RATE_LIMIT per user, HUB_API_BROADCASTER_RATE_LIMIT for ``hub.broadcast``
    holders: the budget the fast path (hub.rest.broadcast_route) counts in too."""

    def allow_request(self, request, view) -> bool:
        user = request.user
        self._wait = broadcasting.take_token(user.pk, user.has_perm(BROADCAST_PERMISSION))
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait


class BroadcastView(HubAPIView):
    """The one publish rule (``hub.policies.may_publish``), as on the WebSocket: a user with
    ``hub.broadcast`` publishes anywhere; anyone else where the channel's ``publish`` policy
    allows (none of the defaults does). ``all`` and ``user`` targets: broadcasters only.
    Every attempt past authentication is audited, refusals included.

    The reference implementation of ``POST /api/broadcast`` (hub.rest.broadcasting): requests with
    a Token or Bearer credential and a plainly valid body are served by the lean ASGI route
    (hub.rest.broadcast_route) with the same answers; session callers, and every request that
    route is not sure of, come here."""

    permission_classes = [permissions.IsAuthenticated]
    throttle_classes = [BroadcastThrottle]

    @extend_schema(request=s.BROADCAST_BODY,
                   responses={200: s.BROADCAST_RESULTS, **errors(400, 401, 403, 413, 415, 503)},
                   summary="Publish a message (or a list of up to 1,000, in order) to a channel, to all, "
                           "or to one user", operation_id="broadcast")
    def post(self, request):
        many = isinstance(request.data, list)
        body = (s.BroadcastSerializer(data=request.data, many=True, max_length=broadcasting.MAX_ITEMS,
                                      allow_empty=False)
                if many else s.BroadcastSerializer(data=request.data))
        if not body.is_valid():
            raise exceptions.ValidationError(_indexed(body.errors) if many else body.errors)
        items = [broadcasting.make_item(v.get("channel"), v.get("user"), v["message"]["type"],
                                        v["message"]["data"])
                 for v in (body.validated_data if many else [body.validated_data])]
        username = request.user.get_username()
        principal = Principal(username=username, is_staff=bool(request.user.is_staff),
                              can_broadcast=request.user.has_perm(BROADCAST_PERMISSION),
                              slurm_user=slurm_user_for(request.user))  # ``owner`` rules: hub.identity
        found = broadcasting.first_refusal(principal, items, get_policies(), settings.HUB["REQUIRE_AUTH"],
                                           settings.HUB["MAX_MESSAGE_SIZE"], many)
        if found is not None:
            broadcasting.audit_refusal(username, *found)
            return Response(found[1].body(), status=found[1].status)
        code, answer = async_to_sync(broadcasting.publish)(username, items, many)
        return Response(answer, status=code)


def _indexed(errors: Any) -> Any:
    """A list body's errors keyed ``[i]`` (the field paths read ``[3].channel``)."""
    if isinstance(errors, list):
        return {f"[{i}]": e for i, e in enumerate(errors) if e}
    if isinstance(errors, dict):
        return {f"[{k}]" if str(k).isdigit() else k: v for k, v in errors.items()}
    return errors


# --- health --------------------------------------------------------------------------------

class HealthView(HubAPIView):
    """Anyone may ask. Anonymous callers get counts only: ``subscriptions`` is ``{}`` (no
    channel or user names; ``subscriptions_total`` and ``channels`` carry the counts); staff
    see ``{channel: count}``. Credentials are optional: a bad or stale one is ignored, never
    a 401 (a probe with an old token still gets an answer). ``status`` is ``degraded`` (200)
    while a Slurm monitor stream is 3 intervals late, named in ``stale``."""

    permission_classes = [permissions.AllowAny]
    throttle_classes = [HealthThrottle]

    def perform_authentication(self, request):
        try:
            request.user  # noqa: B018  authenticates now, while a failure can be absorbed
        except exceptions.APIException:
            pass  # DRF has already set the request anonymous

    @extend_schema(responses={200: s.HealthSerializer, 503: s.UnhealthySerializer, 405: s.ErrorSerializer,
                              429: s.ErrorSerializer},
                   summary="Cluster-wide hub health (channel names for staff only)", operation_id="health")
    def get(self, request):
        try:
            connection.ensure_connection()
        except Exception as exc:  # any driver error means the database is unusable
            return _unhealthy("database", str(exc).splitlines()[0] if str(exc) else "unreachable")
        try:
            figures = call_selector("get_health")
        except HubUnavailable as exc:
            return _unhealthy(exc.service, str(exc))
        figures["subscriptions_total"] = sum(figures["subscriptions"].values())
        if not (request.user and request.user.is_staff):
            figures["subscriptions"] = {}
        try:
            streams, stale = self.monitor_streams()
        except DatabaseError as exc:
            return _unhealthy("database", str(exc).splitlines()[0] if str(exc) else "unreadable")
        return Response({"status": "degraded" if stale else "healthy", **figures,
                         "streams": streams, "stale": stale, "timestamp": utc_timestamp()})

    @staticmethod
    def monitor_streams() -> tuple[dict[str, dict], dict[str, dict]]:
        """(every Slurm monitor stream's age, interval and last poll result; the late ones, 3
        intervals without a successful poll: PROTOCOL.md §6 "degraded"). Both {} when the
        monitor never reported, so a hub without one stays healthy. Streams are named as their
        channels (jobs, nodes, metrics; jobs.b for cluster b's: ``slurm_monitor.clusters``):
        nothing here is per user, so anonymous callers see it too."""
        from hub.rest import selectors

        ages = selectors.monitor_streams(by_channel=True)
        streams = {a.stream: {"age": round(a.age_seconds, 1), "interval": a.interval_seconds, "ok": a.ok}
                   for a in ages}
        return streams, {a.stream: streams[a.stream] for a in ages if a.late}


def _unhealthy(service: str, message: str) -> Response:
    return Response({"status": "unhealthy", "code": "hub_unavailable", "service": service,
                     "message": message, "timestamp": utc_timestamp()},
                    status=status.HTTP_503_SERVICE_UNAVAILABLE)


# --- clients and channels (staff) ----------------------------------------------------------

class StaffView(HubAPIView):
    permission_classes = [permissions.IsAdminUser]


def _client_dict(info) -> dict:
    return {"client_id": info.client_id, "user": info.user, "channels": list(info.channels),
            "state": info.state, "connected_at": info.connected_at, "last_ping": info.last_ping,
            "last_pong": info.last_pong, "server": info.server, "metadata": dict(info.metadata)}


def _channel_dict(info) -> dict:
    return {"name": info.name, "subscriber_count": info.subscriber_count,
            "subscribers": list(info.subscribers), "last_offset": info.last_offset, "epoch": info.epoch}


class ClientListView(StaffView):
    @extend_schema(responses={200: s.ClientSerializer(many=True), **errors(401, 403, 503)},
                   summary="Connected clients, cluster-wide", operation_id="clients_list")
    def get(self, request):
        return Response([_client_dict(c) for c in call_selector("list_clients")])


class ClientDetailView(StaffView):
    @extend_schema(parameters=[OpenApiParameter("client_id", str, OpenApiParameter.PATH,
                                                pattern=CLIENT_ID_PATTERN)],
                   responses={200: s.ClientSerializer, **errors(401, 403, 404, 503)},
                   summary="One connected client", operation_id="client_get")
    def get(self, request, client_id: str):
        info = call_selector("get_client", client_id) if is_valid_client_id(client_id) else None
        if info is None:
            return _not_found(f"no connected client {client_id!r}")
        return Response(_client_dict(info))


class ChannelListView(StaffView):
    @extend_schema(responses={200: s.ChannelSerializer(many=True), **errors(401, 403, 503)},
                   summary="Channels with subscribers, cluster-wide", operation_id="channels_list")
    def get(self, request):
        return Response([_channel_dict(c) for c in call_selector("list_channels")])


class ChannelDetailView(StaffView):
    @extend_schema(parameters=[OpenApiParameter("name", str, OpenApiParameter.PATH,
                                                pattern=s.CHANNEL_PATTERN)],
                   responses={200: s.ChannelSerializer, **errors(401, 403, 404, 503)},
                   summary="One channel: subscribers and last offset", operation_id="channel_get")
    def get(self, request, name: str):
        info = call_selector("get_channel", name) if is_valid_channel(name) else None
        if info is None:
            return _not_found(f"no channel {name!r}")
        return Response(_channel_dict(info))


def _not_found(message: str) -> Response:
    return Response({"code": "not_found", "message": message}, status=status.HTTP_404_NOT_FOUND)


# --- notifications (the user's own and the cluster-wide ones) ----------------------------

class NotificationListView(HubAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[s.NotificationQuerySerializer],
                   responses={200: s.NotificationListSerializer, **errors(400, 401, 503)},
                   summary="Your notifications and the cluster-wide ones, unread first, newest first",
                   operation_id="notifications_list")
    def get(self, request):
        query = s.NotificationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        return Response(notifications.list_notifications(
            slurm_user_for(request.user), unread_only=q["unread"], limit=q["limit"], offset=q["offset"]))

    @extend_schema(request=s.NotificationCreateSerializer,
                   responses={201: s.NotificationSerializer, **errors(400, 401, 403, 413, 415, 503)},
                   summary="Create a notification (for another user or cluster-wide: needs hub.broadcast)",
                   operation_id="notification_create")
    def post(self, request):
        body = s.NotificationCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        fields = dict(body.validated_data)
        me = slurm_user_for(request.user)
        cluster_wide = fields.pop("cluster_wide")
        fields["username"] = None if cluster_wide else fields.pop("user", me)
        # Only a notification to yourself is free: anything that reaches another user's
        # socket (theirs, or everyone's on ``notifications``) speaks for the server.
        if fields["username"] != me and not can_notify_others(request.user):
            self.permission_denied(request, "a cluster-wide notification or one for another user "
                                            "needs the hub.broadcast permission")
        try:
            created = notifications.create_notification(**fields)
        except notifications.NotificationError as exc:
            raise FieldError(exc.field, exc.message) from None
        return Response(created, status=status.HTTP_201_CREATED)


def _notification_id(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) <= MAX_DB_ID else None


_ID_PARAM = OpenApiParameter("notification_id", {"type": "integer", "minimum": 1, "maximum": MAX_DB_ID},
                             OpenApiParameter.PATH)


class NotificationDetailView(HubAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[_ID_PARAM], responses={200: s.NotificationSerializer, **errors(401, 404, 503)},
                   summary="One of your notifications, or a cluster-wide one", operation_id="notification_get")
    def get(self, request, notification_id: str):
        pk = _notification_id(notification_id)
        found = pk and notifications.get_notification(slurm_user_for(request.user), pk)
        return Response(found) if found else _not_found(f"no notification {notification_id!r}")


class NotificationReadView(HubAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[_ID_PARAM], request=None,
                   responses={200: s.NotificationSerializer, **errors(401, 404, 503)},
                   summary="Mark one of your notifications (or a cluster-wide one, for you) read",
                   operation_id="notification_mark_read")
    def post(self, request, notification_id: str):
        pk = _notification_id(notification_id)
        found = pk and notifications.mark_read(slurm_user_for(request.user), pk)
        return Response(found) if found else _not_found(f"no notification {notification_id!r}")


class NotificationReadAllView(HubAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: s.MarkedReadSerializer, **errors(401, 503)},
                   summary="Mark all your notifications (cluster-wide ones included, for you) read",
                   operation_id="notifications_mark_all_read")
    def post(self, request):
        return Response({"marked": notifications.mark_all_read(slurm_user_for(request.user))})
