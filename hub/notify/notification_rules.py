"""Per-user notification rules (issue 15): what a person is told, and where.

A notification's ``type`` falls into one *kind* (``kind_for``):

==================  ===========================================================
``job_completed``   my job ended successfully (``job_completed``)
``job_failed``      my job failed or hit its time limit (``job_failed``, ``job_timeout``)
``job_cancelled``   my job was cancelled (``job_cancelled``)
``job_time_limit``  my job reached 80 % of its time limit (``job_time_limit*``; the monitor's
                    ``SLURM_MONITOR_TIME_LIMIT_WARN_FRACTION``)
``job_node_down``   a node one of my jobs runs on went down, drained or stopped responding
                    (``job_node_down``, addressed to each owner of a job on it)
``job_low_usage``   my finished job used under a quarter of the CPU or memory it asked for
                    (``job_low_usage``; the share is the monitor's ``SLURM_MONITOR_LOW_USAGE_FRACTION``)
``node_down``       a node went down or drained (cluster-wide ``node_down``/``node_drained``)
``maintenance``     any other cluster-wide notification (maintenance, announcements)
``other``           any other notification addressed to me
==================  ===========================================================

Each kind goes to a list of channels: ``page`` (the dashboard's list: always on, the stored
notification is the record), ``browser`` (a desktop notification from an open dashboard tab,
once the person allowed it with a click), ``email`` (Django's e-mail backend) and ``webhook``
(Slack/Teams/Mattermost-compatible incoming webhook). ``page``/``browser`` are decided in the
page (``dashboard/static/dashboard/notify.js``); ``email``/``webhook`` by ``hub.notify.deliveries``.

Defaults, for someone who never configured anything (no ``NotificationRule`` row, or a kind
missing from their row): every kind to ``page`` + ``browser``; ``job_failed`` also by e-mail
when the account has an address. Cluster-wide kinds (``node_down``, ``maintenance``) go by
e-mail or webhook only to people who chose it explicitly, so a node flapping never mails the
whole site by default (and the fan-out stays bounded to those rows). The two reminders
(``job_time_limit``, ``job_node_down``) are on in the page and the browser, not by e-mail:
one array of a thousand tasks nearing its limit must not send a thousand e-mails unasked.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

KINDS = ("job_completed", "job_failed", "job_cancelled", "job_time_limit", "job_node_down",
         "job_low_usage", "node_down", "maintenance", "other")
CLUSTER_KINDS = ("node_down", "maintenance")
CHANNELS = ("page", "browser", "email", "webhook")
SERVER_CHANNELS = ("email", "webhook")
WEBHOOK_URL_MAX_LENGTH = 500

_TYPE_KINDS = {"job_completed": "job_completed", "job_failed": "job_failed",
               "job_timeout": "job_failed", "job_cancelled": "job_cancelled",
               "job_node_down": "job_node_down", "job_low_usage": "job_low_usage",
               "node_down": "node_down", "node_drained": "node_down"}


class RuleError(ValueError):
    """Invalid rule input; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def kind_for(type: str, cluster_wide: bool) -> str:
    """The kind of a notification of ``type`` (``cluster_wide``: it has no addressee)."""
    if type.startswith("job_time_limit"):
        return "job_time_limit"
    kind = _TYPE_KINDS.get(type)
    if cluster_wide:
        return kind if kind == "node_down" else "maintenance"
    return kind if kind and kind not in CLUSTER_KINDS else "other"


def default_channels(has_email: bool) -> dict[str, list[str]]:
    """The channels of each kind for someone who configured nothing (see the module doc)."""
    channels = {kind: ["page", "browser"] for kind in KINDS}
    if has_email:
        channels["job_failed"] = ["page", "browser", "email"]
    return channels


def effective_channels(stored: dict | None, has_email: bool) -> dict[str, list[str]]:
    """The defaults overlaid with the kinds a rule sets; ``page`` is always in."""
    channels = default_channels(has_email)
    for kind, chosen in (stored or {}).items():
        if kind in channels and isinstance(chosen, list):
            channels[kind] = ["page"] + [c for c in CHANNELS if c != "page" and c in chosen]
    return channels


def clean_channels(value: Any) -> dict[str, list[str]]:
    """A ``{kind: [channel, ...]}`` map from a request, or RuleError."""
    if not isinstance(value, dict):
        raise RuleError("channels", "must be an object of kind -> list of channels")
    cleaned: dict[str, list[str]] = {}
    for kind, chosen in value.items():
        if kind not in KINDS:
            raise RuleError("channels", f"unknown kind {str(kind)[:40]!r}; kinds: {', '.join(KINDS)}")
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            raise RuleError("channels", f"{kind}: must be a list of channel names")
        unknown = [c for c in chosen if c not in CHANNELS]
        if unknown:
            raise RuleError("channels", f"{kind}: unknown channel {unknown[0][:40]!r}; "
                                        f"channels: {', '.join(CHANNELS)}")
        cleaned[kind] = [c for c in CHANNELS if c in chosen or c == "page"]
    return cleaned


def clean_webhook_url(value: Any) -> str:
    """An http(s) URL with a host and no credentials, or "" (none); RuleError otherwise.
    Where it points (private addresses) is checked when sending, after DNS: a name may
    resolve differently later."""
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > WEBHOOK_URL_MAX_LENGTH:
        raise RuleError("webhook_url", f"must be a URL of at most {WEBHOOK_URL_MAX_LENGTH} characters")
    if any(ord(c) < 33 or ord(c) == 127 for c in value):
        raise RuleError("webhook_url", "must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise RuleError("webhook_url", "is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise RuleError("webhook_url", "must be an http:// or https:// URL")
    if not parts.hostname:
        raise RuleError("webhook_url", "must name a host")
    if parts.username or parts.password:
        raise RuleError("webhook_url", "must not carry credentials before the host")
    return value


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses
    (IPv4-mapped IPv6 judged as its IPv4): where a user-supplied webhook must not reach."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
                or ip.is_reserved or ip.is_unspecified)


# --- database side -------------------------------------------------------------------------

def rule_for(user):
    """``user``'s NotificationRule row, or None (the defaults)."""
    from hub.models import NotificationRule

    return NotificationRule.objects.filter(user=user).first()


def email_for(user, rule) -> str:
    return (rule.email if rule is not None and rule.email else "") or (user.email or "")


def rules_dict(user) -> dict[str, Any]:
    """The REST shape of ``user``'s rules, defaults filled in."""
    rule = rule_for(user)
    email = email_for(user, rule)
    return {
        "channels": effective_channels(rule.channels if rule else None, bool(email)),
        "email": rule.email if rule else "",
        "effective_email": email,
        "webhook_url": rule.webhook_url if rule else "",
        "customised": rule is not None,
        "kinds": list(KINDS),
        "available_channels": list(CHANNELS),
    }


def save_rules(user, *, channels: dict | None = None, email: str | None = None,
               webhook_url: str | None = None) -> dict[str, Any]:
    """Update ``user``'s rule with the given (already cleaned) fields; kinds not given keep
    their current value. Returns ``rules_dict``."""
    from hub.models import NotificationRule

    rule, _ = NotificationRule.objects.get_or_create(user=user)
    if channels is not None:
        rule.channels = {**(rule.channels or {}), **channels}
    if email is not None:
        rule.email = email
    if webhook_url is not None:
        rule.webhook_url = webhook_url
    rule.save()
    return rules_dict(user)


def user_for_slurm_user(name: str):
    """The Django account whose Slurm user is ``name`` (``hub.identity``), or None."""
    from django.contrib.auth import get_user_model

    from hub.identity import slurm_user_for
    from hub.models import HubProfile

    profile = HubProfile.objects.select_related("user").filter(slurm_user=name).first()
    if profile is not None:
        return profile.user
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: name}).first()
    return user if user is not None and slurm_user_for(user) == name else None


def server_targets(notification) -> list[tuple[str, str, str]]:
    """``(username, channel, target)`` for each e-mail/webhook delivery ``notification``
    calls for: its addressee's per their rule (defaults included); for a cluster-wide one,
    each active user whose explicit rule sends that kind by e-mail or webhook."""
    cluster_wide = notification.username is None
    kind = kind_for(notification.type, cluster_wide)
    if cluster_wide:
        from hub.models import NotificationRule

        people = [(r.user, r) for r in NotificationRule.objects.select_related("user")
                  .filter(user__is_active=True).order_by("id")
                  if set((r.channels or {}).get(kind) or []) & set(SERVER_CHANNELS)]
    else:
        user = user_for_slurm_user(notification.username)
        people = [(user, rule_for(user))] if user is not None and user.is_active else []
    targets = []
    for user, rule in people:
        email = email_for(user, rule)
        chosen = effective_channels(rule.channels if rule else None, bool(email))[kind]
        if "email" in chosen and email:
            targets.append((user.get_username(), "email", email))
        if "webhook" in chosen and rule is not None and rule.webhook_url:
            targets.append((user.get_username(), "webhook", rule.webhook_url))
    return targets
