"""Per-user notifications: persist, push live, list (unread first), mark read.

    create_notification("alice", "job_failed", "Job 12 failed", "exit code 1", severity="error",
                        data={"job_id": "12"})

persists the row and pushes it as event ``notification`` on ``notifications`` and on
``user:alice`` through THE publish API. The row is the truth: if the live push fails
(hub unavailable) the notification is still stored and listed; the failure is logged.
Notifications are addressed by username, so a Slurm job owner without a hub account yet
finds them on first login.
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
    """The cleaned fields of a notification, or NotificationError naming the bad field."""
    if severity not in SEVERITIES:
        raise NotificationError("severity", f"must be one of {', '.join(SEVERITIES)}")
    return {
        "username": _check_text("user", username, 150),
        "type": _check_text("type", type, TYPE_MAX_LENGTH),
        "title": _check_text("title", title, TITLE_MAX_LENGTH),
        "message": _check_text("message", message, MESSAGE_MAX_LENGTH, allow_empty=True),
        "severity": severity,
        "data": _check_data(data),
    }


def to_dict(notification) -> dict[str, Any]:
    """The wire/REST shape of one notification."""
    return {
        "id": notification.id,
        "user": notification.username,
        "type": notification.type,
        "title": notification.title,
        "message": notification.message,
        "severity": notification.severity,
        "data": notification.data,
        "read": notification.read,
        "created": notification.created.isoformat().replace("+00:00", "Z"),
    }


def push_live(payload: dict[str, Any]) -> bool:
    """Publish on ``notifications`` and ``user:<username>``; False (logged) if it failed."""
    from hub.publish import publish_sync, send_to_user_sync

    ok = True
    for send, target in ((publish_sync, NOTIFICATIONS_CHANNEL), (send_to_user_sync, payload["user"])):
        try:
            send(target, NOTIFICATION_EVENT, payload)
        except (HubUnavailable, PublishError) as exc:
            ok = False
            logger.warning("notification %s not pushed to %s: %s", payload["id"], target, exc)
    return ok


def create_notification(username: str, type: str, title: str, message: str,
                        severity: str = "info", data: dict | None = None) -> dict[str, Any]:
    """Persist a notification for ``username`` and push it live; returns its dict.

    Sync (DB + publish). Raises NotificationError for bad input.
    """
    from hub.models import Notification

    fields = validate(username, type, title, message, severity, data)
    notification = Notification.objects.create(**fields)
    payload = to_dict(notification)
    push_live(payload)
    return payload


def list_notifications(username: str, *, unread_only: bool = False, limit: int = 50,
                       offset: int = 0) -> dict[str, Any]:
    """``username``'s notifications, unread first then newest first, with counts."""
    from hub.models import Notification

    mine = Notification.objects.filter(username=username)
    unread = mine.filter(read=False).count()
    rows = mine.filter(read=False) if unread_only else mine
    total = unread if unread_only else mine.count()
    page = rows.order_by("read", "-created", "-id")[offset:offset + limit]
    return {"count": total, "unread": unread, "results": [to_dict(n) for n in page]}


def get_notification(username: str, notification_id: int) -> dict[str, Any] | None:
    from hub.models import Notification

    row = Notification.objects.filter(username=username, id=notification_id).first()
    return to_dict(row) if row else None


def mark_read(username: str, notification_id: int) -> dict[str, Any] | None:
    """Mark one of ``username``'s notifications read; None if they have no such one."""
    from hub.models import Notification

    updated = Notification.objects.filter(username=username, id=notification_id).update(read=True)
    return get_notification(username, notification_id) if updated else None


def mark_all_read(username: str) -> int:
    """Mark every unread notification of ``username`` read; returns how many changed."""
    from hub.models import Notification

    return Notification.objects.filter(username=username, read=False).update(read=True)
