"""Where the monitor's events go: into the hub, by one of two roads.

- ``LayerSink``: THE publish API (``hub.publish``) in this process. It reaches daphne only
  when both share a channel layer, i.e. Redis (``REDIS_URL`` set).
- ``HttpSink``: the hub's REST API (``POST /api/broadcast``, ``POST /api/notifications``) with
  a DRF token. This is how the monitor feeds the embedded hub (no Redis): daphne's layer is
  in-process, so only daphne itself can publish into it. The monitor shares the database
  with daphne, so it creates its own service account (``slurm-monitor``, with the
  ``hub.broadcast`` permission, or staff when that permission does not exist) and token
  through the ORM: no secret to configure.

``auto`` picks ``layer`` when ``REDIS_URL`` is set, else ``http``. Every failure to deliver
raises ``SinkError``; the monitor logs it and goes on.

Notifications about a user's job go through the hub's notification service, which persists
them per user and pushes them live on ``notifications`` and ``user:<name>``. Cluster-wide
ones (a node down) have no user and are published on ``notifications`` only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from slurm_monitor.events import NOTIFICATIONS, Notification, notification_payload

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10.0


class SinkError(Exception):
    """An event was not delivered (hub down, refused, bad name)."""


class Sink:
    """The contract both sinks implement."""

    name = "sink"

    async def publish(self, channel: str, event: str, data: dict[str, Any]) -> int | None:
        raise NotImplementedError

    async def send_to_user(self, username: str, event: str, data: dict[str, Any]) -> int | None:
        raise NotImplementedError

    async def notify(self, notification: Notification) -> None:
        """Persist (when about a user's job) and push one notification live."""
        raise NotImplementedError

    async def _publish_notification(self, notification: Notification) -> None:
        payload = notification_payload(notification, time.time())
        await self.publish(NOTIFICATIONS, "notification", payload)
        if notification.user:
            await self.send_to_user(notification.user, "notification", payload)


class LayerSink(Sink):
    name = "layer"

    async def publish(self, channel: str, event: str, data: dict[str, Any]) -> int | None:
        from hub.publish import HubUnavailable, PublishError, publish

        try:
            return await publish(channel, event, data)
        except (HubUnavailable, PublishError) as exc:
            raise SinkError(f"{event} on {channel}: {exc}") from None

    async def send_to_user(self, username: str, event: str, data: dict[str, Any]) -> int | None:
        from hub.publish import HubUnavailable, PublishError, send_to_user

        try:
            return await send_to_user(username, event, data)
        except (HubUnavailable, PublishError) as exc:
            raise SinkError(f"{event} to user {username}: {exc}") from None

    async def notify(self, notification: Notification) -> None:
        if not notification.user:
            await self._publish_notification(notification)
            return
        try:
            from hub.notifications import create_notification
        except ImportError:
            await self._publish_notification(notification)
            return
        from asgiref.sync import sync_to_async

        try:
            await sync_to_async(create_notification, thread_sensitive=False)(
                notification.user, notification.type, notification.title, notification.message,
                notification.severity, notification.data)
        except Exception as exc:  # a bad username, a database hiccup: report, don't die
            raise SinkError(f"notification {notification.type} for {notification.user}: {exc}") from None


class HttpSink(Sink):
    name = "http"

    def __init__(self, hub_url: str, token: str, timeout: float = HTTP_TIMEOUT_SECONDS) -> None:
        self.hub_url = hub_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.requests_sent = 0

    def _post_sync(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.hub_url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json",
                     "Accept": "application/json"})
        self.requests_sent += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                detail = json.loads(exc.read() or b"{}")
            except ValueError:
                detail = {}
            return exc.code, detail
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SinkError(f"POST {self.hub_url}{path}: {exc}") from None

    async def _post(self, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        status, answer = await asyncio.to_thread(self._post_sync, path, body)
        if status not in (200, 201):
            message = answer.get("message") or answer.get("detail") or "no detail"
            raise SinkError(f"{what}: hub answered {status}: {message}")
        return answer

    async def publish(self, channel: str, event: str, data: dict[str, Any]) -> int | None:
        body = {"channel": channel, "message": {"type": event, "data": data}}
        return (await self._post("/api/broadcast", body, f"{event} on {channel}")).get("offset")

    async def send_to_user(self, username: str, event: str, data: dict[str, Any]) -> int | None:
        body = {"user": username, "message": {"type": event, "data": data}}
        return (await self._post("/api/broadcast", body, f"{event} to {username}")).get("offset")

    async def notify(self, notification: Notification) -> None:
        if not notification.user:
            await self._publish_notification(notification)
            return
        body = {"user": notification.user, "type": notification.type, "title": notification.title,
                "message": notification.message, "severity": notification.severity,
                "data": notification.data}
        await self._post("/api/notifications", body, f"notification {notification.type}")


SERVICE_PERMISSION = ("hub", "broadcast")


def ensure_service_token(username: str) -> str:
    """The DRF token of the monitor's service account, creating account and token if needed.

    The account gets ``hub.broadcast`` when that permission exists, else staff status
    (which the broadcast endpoint then does not accept: the hub must define the permission)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    user, created = get_user_model().objects.get_or_create(username=username)
    if created:
        user.set_unusable_password()
        user.save()
    app_label, codename = SERVICE_PERMISSION
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is not None:
        user.user_permissions.add(permission)
    elif not user.is_staff:
        logger.warning("permission %s.%s does not exist; making %s staff", app_label, codename, username)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def resolve_sink_kind(kind: str) -> str:
    """``auto`` -> ``layer`` with REDIS_URL (shared layer), else ``http``."""
    if kind != "auto":
        return kind
    from django.conf import settings

    return "layer" if getattr(settings, "REDIS_URL", "") else "http"


async def build_sink(kind: str, hub_url: str, service_user: str) -> Sink:
    kind = resolve_sink_kind(kind)
    if kind == "layer":
        return LayerSink()
    from asgiref.sync import sync_to_async

    token = await sync_to_async(ensure_service_token, thread_sensitive=False)(service_user)
    return HttpSink(hub_url, token)
