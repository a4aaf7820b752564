"""Where the monitor's events go: into the hub, by one of two roads.

- ``LayerSink``: THE publish API (``hub.publish``) in this process. It reaches daphne only
  when both share a channel layer, i.e. Redis (``REDIS_URL`` set).
- ``HttpSink``: the hub's REST API (``POST /api/broadcast``, ``POST /api/notifications``) with
  a DRF token. This is how the monitor feeds the embedded hub (no Redis): daphne's layer is
  in-process, so only daphne itself can publish into it. The monitor shares the database
  with daphne, so it creates its own dedicated service account and token through the ORM
  (``slurm_monitor.account``: non-staff, ``hub.broadcast`` only, never an existing account);
  when the hub answers 401 (the token was rotated) it reads the current token and retries once.

One batch per poll (``Sink.deliver``): a poll's events go out together, in order, through
``publish_many``: the layer sink calls ``hub.publish.publish_many``; the HTTP sink posts ONE
``POST /api/broadcast`` with a list body (up to 1,000 items per request, PROTOCOL.md §6)
instead of one request per event. Why batching rather than running the monitor inside the
hub process when there is no Redis: the monitor stays a separate process (a slow ``squeue``
or a crash in it cannot stall or take down the sockets; the hub stays restartable on its
own), and what one request per event cost was the per-request overhead (HTTP round trip,
authentication, thread hops, an audit INSERT each), which a batch pays once per poll:
measured by ``bench/monitor_sink.py`` (docs/benchmarks.md, "REST broadcast").

``auto`` picks ``layer`` when ``REDIS_URL`` is set, else ``http``. Every failure to deliver
raises ``SinkError``; the monitor logs it and goes on.

Every notification goes through the hub's notification service, which persists it: one about
a user's job is pushed on ``user:<name>`` only; a cluster-wide one (a node down, ``user``
None) on ``notifications`` (PROTOCOL.md section 4).
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from typing import Any, Awaitable, Callable, Iterable

from slurm_monitor.account import ServiceAccountError, ensure_service_token
from slurm_monitor.events import Notification, Publication

logger = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10.0
BATCH_ITEMS = 1000  # the most one POST /api/broadcast takes (PROTOCOL.md §6)

__all__ = ["HttpSink", "LayerSink", "ServiceAccountError", "Sink", "SinkError", "build_sink",
           "ensure_service_token", "resolve_sink_kind"]


class SinkError(Exception):
    """An event was not delivered (hub down, refused, bad name)."""


# One item of a batch: ("channel", name, event, data) or ("user", username, event, data).
Item = tuple[str, str, str, dict[str, Any]]


class Sink:
    """The contract both sinks implement."""

    name = "sink"

    async def publish_many(self, items: list[Item]) -> list[SinkError | int | None]:
        """Publish ``items`` in order; one outcome per item (its offset, or the SinkError).
        This default sends them one by one; both sinks batch."""
        outcomes: list[SinkError | int | None] = []
        for kind, name, event, data in items:
            try:
                outcomes.append(await (self.send_to_user if kind == "user" else self.publish)(name, event, data))
            except SinkError as exc:
                outcomes.append(exc)
            except Exception as exc:  # a bug or an unexpected library error: deliver the rest
                logger.exception("delivering %s on %s %s failed", event, kind, name)
                outcomes.append(SinkError(repr(exc)))
        return outcomes

    async def deliver(self, publications: Iterable[Publication], notifications: Iterable[Notification],
                      offsets: dict[str, int] | None = None) -> tuple[int, int, str]:
        """A poll's changes: every event (and its copy to the job owner) in one batch, in
        order, then every notification. Returns (delivered, failed, first error); an event
        counts as delivered when every copy of it was. ``offsets`` (when given) collects the
        last offset each channel got (``user:<name>`` for an owner's copy)."""
        items: list[Item] = []
        owners: list[int] = []  # per item, the index of its publication
        publications = list(publications)
        for index, item in enumerate(publications):
            items.append(("channel", item.channel, item.event, item.data))
            owners.append(index)
            if item.user:
                items.append(("user", item.user, item.event, item.data))
                owners.append(index)
        errors: dict[int, str] = {}
        if items:
            try:
                outcomes: list[Any] = await self.publish_many(items)
            except Exception as exc:  # the whole batch failed (hub down, a bug): all of it
                outcomes = [exc if isinstance(exc, SinkError) else SinkError(repr(exc))] * len(items)
            for (kind, name, _event, _data), owner, outcome in zip(items, owners, outcomes):
                if isinstance(outcome, Exception):
                    errors.setdefault(owner, str(outcome))
                elif offsets is not None and isinstance(outcome, int) and not isinstance(outcome, bool):
                    channel = f"user:{name}" if kind == "user" else name
                    offsets[channel] = max(offsets.get(channel, 0), outcome)
        sent = len(publications) - len(errors)
        first_error = next(iter(errors.values()), "")
        failed = len(errors)
        for note_outcome in await self.notify_many(list(notifications)):
            if note_outcome is None:
                sent += 1
            else:
                failed, first_error = failed + 1, first_error or str(note_outcome)
        return sent, failed, first_error

    async def notify_many(self, notifications: list[Notification]) -> list[Exception | None]:
        """``notify`` each, in order; one outcome per notification (None: delivered, else
        why not). This default sends them one by one; the layer sink stores and pushes a
        poll's notifications together."""
        outcomes: list[Exception | None] = []
        for note in notifications:
            try:
                await self.notify(note)
                outcomes.append(None)
            except Exception as exc:  # a SinkError, or a bug: deliver the rest
                if not isinstance(exc, SinkError):
                    logger.exception("delivering a notification failed")
                outcomes.append(exc)
        return outcomes

    async def publish(self, channel: str, event: str, data: dict[str, Any]) -> int | None:
        raise NotImplementedError

    async def send_to_user(self, username: str, event: str, data: dict[str, Any]) -> int | None:
        raise NotImplementedError

    async def notify(self, notification: Notification) -> None:
        """Persist one notification and push it live: on ``user:<user>`` only when it has a
        user, on ``notifications`` when it is cluster-wide (``user`` None)."""
        raise NotImplementedError

    async def epochs_for(self, offsets: dict[str, int]) -> dict[str, str | None]:
        """The epoch each ``{channel: offset}`` this sink got belongs to (PROTOCOL.md section 5),
        None where it cannot tell. The monitor saves them with the rows (``position``)."""
        return {channel: None for channel in offsets}


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

    async def epochs_for(self, offsets: dict[str, int]) -> dict[str, str | None]:
        """``hub.publish`` returns offsets only: read the epochs right after publishing. An
        epoch changes only when a channel's history is lost (HUB_HISTORY_TTL without a
        publication, or a fresh store); a top below the offset we got means that happened
        in between, and then the epoch is unknown."""
        from hub.engine.node import get_node

        try:
            tops = await get_node().history.positions(list(offsets))
        except Exception:  # Redis down: unknown, never a failed poll
            return {channel: None for channel in offsets}
        return {channel: (tops[channel][1] or None) if tops.get(channel, (0, ""))[0] >= offset else None
                for channel, offset in offsets.items()}

    async def publish_many(self, items: list[Item]) -> list[SinkError | int | None]:
        from hub.publish import publish_many, user_channel

        outcomes = await publish_many([(user_channel(name) if kind == "user" else name, event, data)
                                       for kind, name, event, data in items])
        return [o if isinstance(o, int) else SinkError(f"{event} on {name}: {o}")
                for o, (_kind, name, event, _data) in zip(outcomes, items)]

    async def notify(self, notification: Notification) -> None:
        from asgiref.sync import sync_to_async

        from hub.notify.notifications import create_notification

        scope = f"for {notification.user}" if notification.user else "(cluster-wide)"
        try:
            await sync_to_async(create_notification, thread_sensitive=False)(
                notification.user or None, notification.type, notification.title, notification.message,
                notification.severity, notification.data)
        except Exception as exc:  # a bad username, a database hiccup: report, don't die
            raise SinkError(f"notification {notification.type} {scope}: {exc}") from None


    async def notify_many(self, notifications: list[Notification]) -> list[Exception | None]:
        """A poll's notifications in one worker-thread call (``create_notifications``: one
        INSERT, one ``publish_many``), instead of a thread hop, an INSERT and a Redis round trip
        each (~800 per poll at 100,000 jobs: most of what a poll's delivery cost)."""
        if not notifications:
            return []
        from asgiref.sync import sync_to_async

        from hub.notify.notifications import create_notifications

        specs = [(n.user or None, n.type, n.title, n.message, n.severity, n.data) for n in notifications]
        try:
            outcomes = await sync_to_async(create_notifications, thread_sensitive=False)(specs)
        except Exception as exc:  # the database: none of them stored
            return [SinkError(f"{len(specs)} notifications: {exc}")] * len(specs)
        return [SinkError(f"notification {n.type}: {o}") if isinstance(o, Exception) else None
                for n, o in zip(notifications, outcomes)]


class HttpSink(Sink):
    name = "http"

    def __init__(self, hub_url: str, token: str, timeout: float = HTTP_TIMEOUT_SECONDS,
                 token_source: Callable[[], Awaitable[str]] | None = None) -> None:
        """``token_source`` returns the service account's current token: called when the hub
        answers 401 (the token was rotated), then the request is sent once more."""
        self.hub_url = hub_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.token_source = token_source
        self.requests_sent = 0
        self.epochs: dict[str, str] = {}  # channel -> epoch, from the hub's answers that carry one

    def _post_sync(self, path: str, body: Any, token: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            self.hub_url + path, data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json",
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

    async def _post(self, path: str, body: Any, what: str) -> Any:
        token = self.token
        status, answer = await asyncio.to_thread(self._post_sync, path, body, token)
        if status == 401 and self.token_source is not None:
            try:
                fresh = await self.token_source()
            except ServiceAccountError as exc:
                raise SinkError(f"{what}: hub answered 401 and the service account is unusable: {exc}") from None
            if fresh != token:
                if self.token == token:
                    logger.info("the service token was rotated: using the new one")
                self.token = fresh
                status, answer = await asyncio.to_thread(self._post_sync, path, body, fresh)
        if status not in (200, 201):
            answer = answer if isinstance(answer, dict) else {}
            message = answer.get("message") or answer.get("detail") or "no detail"
            raise SinkError(f"{what}: hub answered {status}: {message}")
        for item in answer if isinstance(answer, list) else [answer]:
            if isinstance(item, dict) and isinstance(item.get("epoch"), str) and item.get("channel"):
                self.epochs[str(item["channel"])] = item["epoch"]
        return answer

    async def epochs_for(self, offsets: dict[str, int]) -> dict[str, str | None]:
        """The epoch the hub's broadcast answer carried, when it carries one."""
        return {channel: self.epochs.get(channel) for channel in offsets}

    async def publish(self, channel: str, event: str, data: dict[str, Any]) -> int | None:
        body = {"channel": channel, "message": {"type": event, "data": data}}
        return (await self._post("/api/broadcast", body, f"{event} on {channel}")).get("offset")

    async def send_to_user(self, username: str, event: str, data: dict[str, Any]) -> int | None:
        body = {"user": username, "message": {"type": event, "data": data}}
        return (await self._post("/api/broadcast", body, f"{event} to {username}")).get("offset")

    async def publish_many(self, items: list[Item]) -> list[SinkError | int | None]:
        """One ``POST /api/broadcast`` per BATCH_ITEMS items (a list body). If the hub refuses
        a batch as a whole (400: one item it cannot take refuses the list), the items of
        that batch are sent one by one, so one bad event does not cost the others."""
        outcomes: list[SinkError | int | None] = []
        for start in range(0, len(items), BATCH_ITEMS):
            chunk = items[start:start + BATCH_ITEMS]
            body = [{kind: name, "message": {"type": event, "data": data}}
                    for kind, name, event, data in chunk]
            try:
                answer = await self._post("/api/broadcast", body, f"a batch of {len(chunk)} events")
            except SinkError as exc:
                if "hub answered 400" not in str(exc) or len(chunk) == 1:
                    outcomes.extend([exc] * len(chunk))
                    continue
                outcomes.extend(await super().publish_many(chunk))
                continue
            for result, (kind, name, event, _data) in zip(answer, chunk):  # type: ignore[call-overload]
                outcomes.append(result.get("offset") if result.get("success") else SinkError(
                    f"{event} to {kind} {name}: {result.get('message', 'refused')}"))
        return outcomes

    async def notify(self, notification: Notification) -> None:
        body: dict[str, Any] = {"type": notification.type, "title": notification.title,
                                "message": notification.message, "severity": notification.severity,
                                "data": notification.data}
        if notification.user:
            body["user"] = notification.user
        else:
            body["cluster_wide"] = True
        await self._post("/api/notifications", body, f"notification {notification.type}")


def resolve_sink_kind(kind: str) -> str:
    """``auto`` -> ``layer`` with REDIS_URL (shared layer), else ``http``."""
    if kind != "auto":
        return kind
    from django.conf import settings

    return "layer" if getattr(settings, "REDIS_URL", "") else "http"


async def build_sink(kind: str, hub_url: str, service_user: str) -> Sink:
    """The sink for ``kind``; for ``http``, with the service account's token (created if
    needed). Raises ServiceAccountError when the account cannot be used."""
    kind = resolve_sink_kind(kind)
    if kind == "layer":
        return LayerSink()
    from asgiref.sync import sync_to_async
    from django.db import close_old_connections

    def load() -> str:
        close_old_connections()  # a long-running process: no stale connection, none kept
        try:
            return ensure_service_token(service_user)
        finally:
            close_old_connections()

    async def token_source() -> str:
        return await sync_to_async(load, thread_sensitive=True)()

    return HttpSink(hub_url, await token_source(), token_source=token_source)
