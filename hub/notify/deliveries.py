"""E-mail and webhook deliveries of notifications (issue 15): planned once, sent by a worker,
retried with exponential backoff, recorded (``hub.models.NotificationDelivery``).

- ``enqueue(notification)`` (called by ``hub.notify.notifications.create_notification``) plans, once
  the row is committed, one ``NotificationDelivery`` per (channel, target) the rules call for
  (``hub.notify.notification_rules.server_targets``). The unique (notification, channel, target)
  makes planning twice harmless. Planning never raises into the caller: it is logged.
- ``deliver_pending()`` sends what is due (``manage.py run_deliveries`` loops over it). Each
  row is *claimed* by a conditional UPDATE (status pending, attempts unchanged) that also
  pushes ``next_attempt_at`` past the send timeout, so two workers never send one row twice.
  2xx (webhook) or an accepted ``send_mail`` marks it ``sent``; an error reschedules it after
  ``HUB_DELIVERY_BACKOFF_SECONDS * 2**(attempts-1)`` (capped at an hour) until
  ``HUB_DELIVERY_MAX_ATTEMPTS``, then ``failed``. A refused target fails at once.
- Webhooks POST ``{"text": "<title>\\n<message>"}`` (Slack, Mattermost and Teams incoming
  webhooks take ``text``) with a 5 s timeout and no redirects. The URL is a user's choice, so
  it is an SSRF road: unless ``HUB_WEBHOOK_ALLOW_PRIVATE=true`` the host's addresses must all
  be public (``is_public_address``) and the connection goes to the vetted address itself (no
  second DNS answer in between).
- E-mail goes through ``django.core.mail.send_mail`` (``EMAIL_BACKEND`` and friends).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from hub.notify import notification_rules as rules

logger = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 5.0  # a webhook
EMAIL_TIMEOUT_SECONDS = 30.0  # an SMTP conversation; both well under CLAIM_SECONDS
CLAIM_SECONDS = 60  # a claimed row is not due again for this long (a crashed worker's row retries)
BACKOFF_CAP_SECONDS = 3600
USER_AGENT = "hub-notifications/1"


class Refused(Exception):
    """The target may never be sent to (e.g. a private webhook address): fail, no retry."""


def _env_number(name: str, default: float, cast=float):
    try:
        return max(cast(os.environ.get(name, default)), 0)
    except ValueError:
        return default


def max_attempts() -> int:
    return max(1, _env_number("HUB_DELIVERY_MAX_ATTEMPTS", 6, int))


def backoff_seconds(attempts: int) -> float:
    """The wait after the ``attempts``-th failed try: base, 2 x base, 4 x base ... capped."""
    base = _env_number("HUB_DELIVERY_BACKOFF_SECONDS", 30.0)
    return min(base * 2 ** max(attempts - 1, 0), BACKOFF_CAP_SECONDS)


def allow_private() -> bool:
    return os.environ.get("HUB_WEBHOOK_ALLOW_PRIVATE", "").strip().lower() in ("1", "true", "yes", "on")


# --- planning ------------------------------------------------------------------------------

def enqueue(notification) -> None:
    """Plan ``notification``'s e-mail/webhook deliveries once the surrounding transaction
    commits (at once outside one). Never raises."""
    transaction.on_commit(lambda: plan(notification))


def plan(notification) -> int:
    """Create the delivery rows ``notification`` calls for; returns how many are new."""
    from hub.models import NotificationDelivery

    try:
        targets = rules.server_targets(notification)
    except Exception:  # rules are user data: never let them break notifying
        logger.exception("planning deliveries of notification %s failed", notification.pk)
        return 0
    created = 0
    now = timezone.now()
    for username, channel, target in targets:
        try:
            with transaction.atomic():
                _, new = NotificationDelivery.objects.get_or_create(
                    notification_id=notification.pk, channel=channel, target=target,
                    defaults={"username": username, "next_attempt_at": now})
            created += new
        except IntegrityError:  # planned concurrently by another process
            pass
    return created


# --- sending -------------------------------------------------------------------------------

def deliver_pending(limit: int = 100) -> dict[str, int]:
    """Send up to ``limit`` due deliveries; returns counts by outcome (sent, retry, failed)."""
    from hub.models import NotificationDelivery

    now = timezone.now()
    due = list(NotificationDelivery.objects.select_related("notification")
               .filter(status=NotificationDelivery.Status.PENDING, next_attempt_at__lte=now)
               .order_by("next_attempt_at", "id")[:limit])
    counts = {"sent": 0, "retry": 0, "failed": 0}
    for delivery in due:
        claimed = NotificationDelivery.objects.filter(
            pk=delivery.pk, status=NotificationDelivery.Status.PENDING, attempts=delivery.attempts,
        ).update(attempts=F("attempts") + 1,
                 next_attempt_at=timezone.now() + timedelta(seconds=CLAIM_SECONDS))  # lease from now
        if not claimed:
            continue  # another worker has it
        delivery.attempts += 1
        counts[_attempt(delivery)] += 1
    return counts


def _attempt(delivery) -> str:
    from hub.models import NotificationDelivery

    Status = NotificationDelivery.Status
    fields: dict[str, Any]
    try:
        send(delivery)
    except Refused as exc:
        outcome, fields = "failed", {"status": Status.FAILED, "last_error": f"refused: {exc}"}
    except Exception as exc:  # any send error is recorded and retried
        error = f"{type(exc).__name__}: {exc}"[:2000]
        if delivery.attempts >= max_attempts():
            outcome, fields = "failed", {"status": Status.FAILED, "last_error": error}
        else:
            wait = timedelta(seconds=backoff_seconds(delivery.attempts))
            outcome, fields = "retry", {"last_error": error, "next_attempt_at": timezone.now() + wait}
    else:
        outcome, fields = "sent", {"status": Status.SENT, "sent_at": timezone.now(), "last_error": ""}
    NotificationDelivery.objects.filter(pk=delivery.pk).update(**fields)
    log = logger.info if outcome == "sent" else logger.warning
    log("delivery %s (%s to %s) attempt %d: %s %s", delivery.pk, delivery.channel,
        delivery.target, delivery.attempts, outcome, fields.get("last_error", ""))
    return outcome


def text_of(notification) -> str:
    return f"{notification.title}\n{notification.message}".strip()


def send(delivery) -> None:
    """Send one delivery now; raises on failure (Refused: never retry)."""
    if delivery.channel == "email":
        from django.core.mail import get_connection, send_mail

        notification = delivery.notification
        # Bounded, so a hung SMTP server cannot outlive the claim (another worker would resend).
        connection = get_connection(timeout=EMAIL_TIMEOUT_SECONDS)
        if not send_mail(notification.title[:200], text_of(notification), None, [delivery.target],
                         connection=connection):
            raise RuntimeError("the e-mail backend accepted no message")
    elif delivery.channel == "webhook":
        post_webhook(delivery.target, {"text": text_of(delivery.notification)})
    else:
        raise Refused(f"unknown channel {delivery.channel!r}")


def vetted_address(host: str, port: int) -> str:
    """An address of ``host`` to connect to; Refused if any of its addresses is not public
    (unless HUB_WEBHOOK_ALLOW_PRIVATE)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve {host}: {exc}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise OSError(f"cannot resolve {host}")
    if not allow_private():
        bad = [a for a in addresses if not rules.is_public_address(a)]
        if bad:
            raise Refused(f"webhook host {host} resolves to a non-public address ({bad[0]}); "
                          "set HUB_WEBHOOK_ALLOW_PRIVATE=true to allow it")
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_webhook(url: str, body: dict) -> None:
    """POST ``body`` as JSON to ``url``; returns on 2xx, raises otherwise."""
    url = rules.clean_webhook_url(url)
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    host = parts.hostname or ""
    address = vetted_address(host, port)
    connection_class = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    connection = connection_class(host, port, address, timeout=SEND_TIMEOUT_SECONDS)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
        response = connection.getresponse()
        response.read(4096)
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise OSError(f"webhook answered HTTP {response.status}")
