"""Notifications: persist, push live, list (unread first), mark read.

Two scopes, one payload shape (``to_dict``; ``user`` is null for a cluster-wide one):

- **per user**: ``create_notification("alice", "job_failed", "Job 12 failed", "exit code 1",
  severity="error", data={"job_id": "12"})`` persists the row and pushes it as event
  ``notification`` on ``user:alice`` **and nowhere else** (PROTOCOL.md section 4: per-user
  data only on per-user channels). Addressed by username, so a Slurm job owner without a hub
  account yet finds them on first login.
- **cluster-wide**: ``create_notification(None, "node_down", ...)`` (a node down, maintenance)
  persists a row with no username and pushes it on ``notifications``. Every authenticated user
  lists it next to their own; each user's read state of it is a ``NotificationRead`` row.

Who may create which is the caller's business (REST: ``hub.broadcast`` for anything but a
notification to yourself). The row is the truth: if the live push fails (hub unavailable) the
notification is still stored and listed; the failure is logged.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from hub.engine.errors import HubUnavailable, PublishError

logger = logging.getLogger(__name__)

NOTIFICATIONS_CHANNEL = "notifications"
NOTIFICATION_EVENT = "notification"
SEVERITIES = ("info", "success", "warning", "error", "critical")
TYPE_MAX_LENGTH = 100
TITLE_MAX_LENGTH = 200
MESSAGE_MAX_LENGTH = 10_000
DATA_MAX_BYTES = 64 * 1024


class NotificationError(ValueError):
    """Invalid notification input; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_text(field: str, value: Any, max_length: int, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise NotificationError(field, "must be a string")
    if "\x00" in value:
        raise NotificationError(field, "must not contain NUL (U+0000) characters")
    if not value.strip() and not allow_empty:
        raise NotificationError(field, "must not be empty")
    if len(value) > max_length:
        raise NotificationError(field, f"at most {max_length} characters")
    return value


def _check_data(data: Any) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise NotificationError("data", "must be a JSON object")
    try:
        size = len(json.dumps(data).encode())
    except (TypeError, ValueError):
        raise NotificationError("data", "must be JSON-serialisable") from None
    if size > DATA_MAX_BYTES:
        raise NotificationError("data", f"at most {DATA_MAX_BYTES} bytes of JSON")
    if _has_nul(data):  # PostgreSQL's jsonb cannot store U+0000
        raise NotificationError("data", "must not contain NUL (U+0000) characters")
    return data


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def validate(username: Any, type: Any, title: Any, message: Any, severity: Any,
             data: Any) -> dict[str, Any]:
    """The cleaned fields of a notification, or NotificationError naming the bad field.
    ``username`` None means cluster-wide; an empty string is an error, never "everyone"."""
    if severity not in SEVERITIES:
        raise NotificationError("severity", f"must be one of {', '.join(SEVERITIES)}")
    return {
        "username": None if username is None else _check_text("user", username, 150),
        "type": _check_text("type", type, TYPE_MAX_LENGTH),
        "title": _check_text("title", title, TITLE_MAX_LENGTH),
        "message": _check_text("message", message, MESSAGE_MAX_LENGTH, allow_empty=True),
        "severity": severity,
        "data": _check_data(data),
    }


def to_dict(notification, read: bool | None = None) -> dict[str, Any]:
    """The wire/REST shape of one notification (both scopes). ``read`` overrides the row's
    own flag: a cluster-wide row's read state belongs to the user asking."""
    return {
        "id": notification.id,
        "user": notification.username or None,
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "severity": notification.severity,
        "data": notification.data,
        "read": notification.read if read is None else read,
        "created": notification.created.isoformat().replace("+00:00", "Z"),
    }


def push_live(payload: dict[str, Any]) -> bool:
    """Publish a per-user notification on ``user:<user>`` only, a cluster-wide one (``user``
    null) on ``notifications`` only; False (logged) if it failed. One road, one shape: THE
    publish API's sync twin (bounded by ``hub.publish.DEADLINE_SECONDS``, so a dead Redis
    cannot hang the caller), event ``notification``, data ``to_dict``'s payload."""
    from hub import publish as hub_publish  # at call time: tests capture the publish API

    user = payload["user"]
    channel = hub_publish.user_channel(user) if user else NOTIFICATIONS_CHANNEL
    try:
        hub_publish.publish_sync(channel, NOTIFICATION_EVENT, payload)
    except (HubUnavailable, PublishError) as exc:
        logger.warning("notification %s not pushed to %s: %s", payload["id"], channel, exc)
        return False
    return True


def create_notification(username: str | None, type: str, title: str, message: str,
                        severity: str = "info", data: dict | None = None) -> dict[str, Any]:
    """Persist a notification for ``username`` (None: cluster-wide) and push it live; returns
    its dict. Sync (DB + publish). Raises NotificationError for bad input."""
    from hub.models import Notification

    fields = validate(username, type, title, message, severity, data)
    notification = Notification.objects.create(**fields)
    payload = to_dict(notification)
    push_live(payload)
    from hub.notify import deliveries
    deliveries.enqueue(notification)  # e-mail/webhook per the person's rules, once committed
    return payload


def create_notifications(specs: list[tuple[Any, ...]]) -> list[dict[str, Any] | NotificationError]:
    """``create_notification`` for many at once: ``specs`` are its arguments (username, type,
    title, message, severity, data); one outcome per spec, its dict or the NotificationError
    that refused it. The valid ones are stored in one INSERT and pushed in one
    ``publish_many`` (each on its own channel, as ``push_live``; a failed push is logged,
    the row stays the truth), then their deliveries planned: what the Slurm monitor pays
    once per poll instead of once per ended job. Other errors (the database) raise."""
    from hub import publish as hub_publish
    from hub.models import Notification
    from hub.notify import deliveries

    outcomes: list[dict[str, Any] | NotificationError] = []
    rows: list[Notification] = []
    for spec in specs:
        try:
            rows.append(Notification(**validate(*spec)))
            outcomes.append({})
        except NotificationError as exc:
            outcomes.append(exc)
    if rows:
        rows = Notification.objects.bulk_create(rows)  # ids set: SQLite and PostgreSQL return them
    payloads = [to_dict(row) for row in rows]
    fill = iter(payloads)
    outcomes = [o if isinstance(o, NotificationError) else next(fill) for o in outcomes]
    if payloads:
        items = [(hub_publish.user_channel(p["user"]) if p["user"] else NOTIFICATIONS_CHANNEL,
                  NOTIFICATION_EVENT, p) for p in payloads]
        pushed = hub_publish.publish_many_sync(items)
        failed = [(p["id"], o) for p, o in zip(payloads, pushed) if not isinstance(o, int)]
        if failed:
            logger.warning("%d of %d notifications not pushed; first %s: %s", len(failed), len(payloads),
                           failed[0][0], failed[0][1])
    known = _accounts_among({row.username for row in rows if row.username})
    for row in rows:
        if row.username is None or row.username in known:
            deliveries.enqueue(row)  # planning asks who the name is: 2 queries each
    return outcomes


def _accounts_among(names: set[str]) -> set[str]:
    """Those of ``names`` that may be an account's Slurm user (a profile's ``slurm_user``, or
    a username): for any other, ``user_for_slurm_user`` is None and a delivery plan is empty,
    so ``create_notifications`` skips planning it (a cluster's job owners mostly have no
    hub account)."""
    from django.contrib.auth import get_user_model

    from hub.models import HubProfile

    field = get_user_model().USERNAME_FIELD
    ordered, found = sorted(names), set[str]()
    for start in range(0, len(ordered), 500):
        chunk = ordered[start:start + 500]
        found.update(HubProfile.objects.filter(slurm_user__in=chunk).values_list("slurm_user", flat=True))
        found.update(get_user_model().objects.filter(**{f"{field}__in": chunk}).values_list(field, flat=True))
    return found


def _visible_to(username: str):
    """``username``'s notifications and the cluster-wide ones, each annotated ``is_read``
    (the row's flag for their own, their NotificationRead for a cluster-wide one)."""
    from django.db.models import BooleanField, Case, Exists, F, OuterRef, Q, When

    from hub.models import Notification, NotificationRead

    read_by_me = NotificationRead.objects.filter(notification=OuterRef("pk"), username=username)
    return (Notification.objects.filter(Q(username=username) | Q(username__isnull=True))
            .annotate(is_read=Case(When(username__isnull=True, then=Exists(read_by_me)),
                                   default=F("read"), output_field=BooleanField())))


def list_notifications(username: str, *, unread_only: bool = False, limit: int = 50,
                       offset: int = 0) -> dict[str, Any]:
    """``username``'s notifications and the cluster-wide ones, unread first then newest
    first, with counts. ``username`` is the addressee name, i.e. the caller's Slurm user
    (``hub.identity.slurm_user_for``), the name the monitor notifies a job owner by."""
    mine = _visible_to(username)
    unread_rows = mine.filter(is_read=False)
    unread = unread_rows.count()
    rows = unread_rows if unread_only else mine
    total = unread if unread_only else mine.count()
    page = rows.order_by("is_read", "-created", "-id")[offset:offset + limit]
    return {"count": total, "unread": unread, "results": [to_dict(n, n.is_read) for n in page]}


def get_notification(username: str, notification_id: int) -> dict[str, Any] | None:
    """One of ``username``'s notifications or a cluster-wide one; None otherwise."""
    row = _visible_to(username).filter(id=notification_id).first()
    return to_dict(row, row.is_read) if row else None


def mark_read(username: str, notification_id: int) -> dict[str, Any] | None:
    """Mark one notification read for ``username`` (theirs, or a cluster-wide one for them
    only); None if they cannot see it."""
    from hub.models import Notification, NotificationRead

    row = Notification.objects.filter(id=notification_id).only("id", "username").first()
    if row is None:
        return None
    if row.username is None:
        NotificationRead.objects.get_or_create(notification_id=row.id, username=username)
    elif row.username == username:
        Notification.objects.filter(id=row.id).update(read=True)
    else:
        return None
    return get_notification(username, notification_id)


def mark_all_read(username: str) -> int:
    """Mark every notification ``username`` has not read yet read; returns how many changed."""
    from hub.models import Notification, NotificationRead

    own = Notification.objects.filter(username=username, read=False).update(read=True)
    unread_wide = list(_visible_to(username).filter(username__isnull=True, is_read=False)
                       .values_list("id", flat=True))
    NotificationRead.objects.bulk_create(
        [NotificationRead(notification_id=pk, username=username) for pk in unread_wide],
        ignore_conflicts=True)
    return own + len(unread_wide)
