"""The broadcast service: what ``POST /api/broadcast`` does once a body is parsed
(PROTOCOL.md §6), shared by the lean ASGI route (``hub.rest.broadcast_route``, the fast path) and
the DRF view (``hub.rest.apis.BroadcastView``, the reference: schema, session auth, every error).

A body is one object ``{"channel"|"user", "message": {"type", "data"}}`` or a list of 1 to
MAX_ITEMS of them. A list is all or nothing *in validation*: every item is validated, checked
against the publish rule and sized before anything is published, and the first bad item
refuses the whole request (400 naming ``[i].field``, 403, or 413 naming ``[i]``). Then the
items are published in order (``hub.publish.publish_many``: one engine call, with Redis one
atomic script round trip for the whole list) and the answer is a list of results, one per
item: ``{"success": true, "channel", "offset"}``, or for an item the engine refused
``{"success": false, "code", "message"}``. When a backing service fails, the list was not
published (nor known to be: one call for all of it) and the answer is 503 as for one object;
(only a list longer than one engine call, which REST does not accept, could end half
published: its later items carry ``hub_unavailable``).

Each item is audited (``hub.ops.audit``: queued, written off the request path), refusals too.
Validation and encoding happen once here: ``quick_items`` checks the parsed body without DRF
and encodes each message once (``hub.socket.protocol.EncodedData``: its size is the limit check and
the audit figure, its text goes into the frame as is).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any

from hub.ops import audit
from hub import publish as hub_publish
from hub.engine.errors import HubUnavailable, PublishError
from hub.rest.permissions import BROADCASTER_RATE_LIMIT_DEFAULT, RATE_LIMIT_DEFAULT, api_rate_limit
from hub.policies import Principal, PolicySet, may_publish
from hub.socket.protocol import CONTROL_TYPES, DEFAULT_EVENT, ProtocolError, encode_data

MAX_ITEMS = 1000
CHANNEL_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
EVENT_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
USERNAME_RE = re.compile(r"[\w.@+\-]{1,150}")
# Channel and event names already seen valid: a publisher repeats a few names, so most items
# cost a set lookup instead of a regular expression (bounded: cleared when full).
_GOOD_NAMES: set[tuple[str, str]] = set()
_GOOD_NAMES_MAX = 10_000


def _good(kind: str, value: Any, pattern: re.Pattern) -> bool:
    if type(value) is not str:
        return False
    if (kind, value) in _GOOD_NAMES:
        return True
    if not pattern.fullmatch(value) or (kind == "event" and value in CONTROL_TYPES):
        return False
    if len(_GOOD_NAMES) >= _GOOD_NAMES_MAX:
        _GOOD_NAMES.clear()
    _GOOD_NAMES.add((kind, value))
    return True


@dataclass(frozen=True, slots=True)
class Item:
    target: audit.BroadcastTarget
    event: str
    data: Any  # may be hub.socket.protocol.EncodedData (encoded once, by quick_items)
    size: int  # the message as compact UTF-8 JSON, bytes


class Refused(Exception):
    """The whole request is refused before anything was published (status, code, message;
    ``field`` for a 400 naming it)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> dict[str, Any]:
        if self.field is None:
            return {"code": self.code, "message": self.message}
        return {"code": self.code, "message": f"{self.field}: {self.message}",
                "fields": {self.field: [self.message]}}


def make_item(channel: str | None, user: str | None, event: str, data: Any, size: int | None = None) -> Item:
    target = audit.target_for(channel=channel, user=user)
    if size is None:
        size = audit.encoded_size({"type": event, "data": data})
    return Item(target, event, data, size)


def quick_items(body: Any) -> list[Item] | None:
    """The items of a parsed body when every one is plainly valid, else None: the caller
    lets the DRF serializer decide (and name the field). Accepts a subset of what
    ``hub.rest.serializers.BroadcastSerializer`` accepts, with the same result."""
    many = isinstance(body, list)
    raw = body if many else [body]
    if not raw or len(raw) > MAX_ITEMS:
        return None
    items = []
    targets: dict[tuple[Any, Any], audit.BroadcastTarget] = {}  # a list repeats a few targets
    for entry in raw:
        if type(entry) is not dict:
            return None
        channel, user, message = entry.get("channel"), entry.get("user"), entry.get("message")
        if ("channel" in entry) == ("user" in entry) or type(message) is not dict:
            return None  # (a null channel or user is DRF's to name)
        if not (_good("channel", channel, CHANNEL_RE) if user is None else _good("user", user, USERNAME_RE)):
            return None
        event = message.get("type", DEFAULT_EVENT)
        if not _good("event", event, EVENT_RE):
            return None
        data = message.get("data")
        try:  # encoded here once, for the size and for the frame (the engine takes it as is)
            encoded = encode_data(data)
        except ProtocolError:  # Infinity/NaN from a huge exponent: DRF's answer, not ours
            return None
        if "\\u" in encoded.text:  # escaped non-ASCII (or a control character): measure
            size = audit.encoded_size({"type": event, "data": data})
        else:  # '{"type":"<event>","data":<text>}': the compact UTF-8 form, byte for byte
            size = len(encoded.text) + len(event) + 19
        target = targets.get((channel, user))
        if target is None:
            target = targets[(channel, user)] = audit.target_for(channel=channel, user=user)
        items.append(Item(target, event, encoded, size))
    return items


def first_refusal(principal: Principal, items: list[Item], policies: PolicySet,
                  auth_required: bool, max_size: int, many: bool) -> tuple[Item, Refused] | None:
    """The first item the publish rule refuses (403) or that is too large (413), with the
    refusal of the whole request; None when every item may go. Pure: the caller audits."""
    for index, item in enumerate(items):
        where = f"[{index}]: " if many else ""
        target = item.target
        allowed = principal.can_broadcast if target.kind != "channel" else may_publish(
            policies, principal, target.channel, auth_required)
        if not allowed:
            return item, Refused(403, "permission_denied", where + (
                "broadcasting needs the hub.broadcast permission" if target.kind != "channel"
                else f"publishing to {target.name!r} needs the hub.broadcast permission or the channel's "
                     "publish policy"))
        if item.size > max_size:
            return item, Refused(413, "payload_too_large",
                                 f"{where}message is {item.size} bytes; the limit is {max_size}")
    return None


def audit_refusal(username: str, item: Item, refusal: Refused) -> None:
    result = audit.RESULT_FORBIDDEN if refusal.status == 403 else audit.RESULT_TOO_LARGE
    audit.record(username, item.target, item.event, item.size, result)


# --- the rate limit: HUB_API_RATE_LIMIT, HUB_API_BROADCASTER_RATE_LIMIT for hub.broadcast ----

_buckets: dict[tuple, tuple[float, float]] = {}  # (user, rate) -> (tokens, when)
_BUCKETS_MAX = 100_000
_rates: dict[tuple[str, str | None], tuple[int, int]] = {}


def _rate(variable: str, default: str) -> tuple[int, int]:
    """api_rate_limit, parsed once per value of the variable (read at use, as before)."""
    key = (variable, os.environ.get(variable))
    found = _rates.get(key)
    if found is None:
        found = _rates[key] = api_rate_limit(variable, default)
    return found


def take_token(user_id: Any, can_broadcast: bool) -> float | None:
    """One request of ``user_id``'s budget: None if allowed (counted), else the seconds to wait.

    A token bucket of ``requests`` tokens refilled at ``requests/seconds``, per user and per
    process (as DRF's throttles with the default local-memory cache). Why not DRF's
    SimpleRateThrottle: it keeps a list of every request time in the window, which the cache
    pickles per request (at 12,000/min, 12,000 floats each time); even two numbers in Django's
    cache cost ~25 µs a request, most of what this route adds to a publication."""
    if can_broadcast:
        requests, seconds = _rate("HUB_API_BROADCASTER_RATE_LIMIT", BROADCASTER_RATE_LIMIT_DEFAULT)
    else:
        requests, seconds = _rate("HUB_API_RATE_LIMIT", RATE_LIMIT_DEFAULT)
    key = (user_id, requests, seconds)
    now = time.monotonic()
    tokens, last = _buckets.get(key) or (float(requests), now)
    tokens = min(float(requests), tokens + (now - last) * requests / seconds)
    if tokens < 1.0:
        return (1.0 - tokens) * seconds / requests
    if len(_buckets) >= _BUCKETS_MAX and key not in _buckets:
        _buckets.clear()  # bounded; (only) forgets budgets, no one is refused by it
    _buckets[key] = (tokens - 1.0, now)
    return None


def reset_rates() -> None:
    """Tests: every budget full again."""
    _buckets.clear()


def _field(exc: PublishError, target: audit.BroadcastTarget) -> str:
    if exc.code == "invalid_message":
        return "message.type"
    return "user" if target.kind == "user" else "channel"


async def publish(username: str, items: list[Item], many: bool) -> tuple[int, Any]:
    """Publish checked ``items`` in order and audit each; (HTTP status, JSON body)."""
    try:
        outcomes = await hub_publish.publish_many(
            [(item.target.channel, item.event, item.data) for item in items])
    except Exception as exc:  # a bug below: audited, then the caller answers 500
        for item in items:
            audit.record(username, item.target, item.event, item.size, audit.RESULT_INTERNAL, error=repr(exc))
        raise
    results = []
    for item, outcome in zip(items, outcomes):
        target = item.target
        if isinstance(outcome, int):
            audit.record(username, target, item.event, item.size, audit.RESULT_OK, offset=outcome)
            results.append({"success": True, "channel": target.channel, "offset": outcome})
        elif isinstance(outcome, PublishError):
            audit.record(username, target, item.event, item.size, outcome.code, error=outcome.message)
            refusal = Refused(400, outcome.code, outcome.message, _field(outcome, target))
            if not many:
                return 400, refusal.body()
            results.append({"success": False, **refusal.body()})
        else:
            audit.record(username, target, item.event, item.size, audit.RESULT_UNAVAILABLE, error=str(outcome))
            results.append({"success": False, **unavailable(outcome)})
    if not any(r["success"] for r in results) and isinstance(outcomes[0], HubUnavailable):
        return 503, unavailable(outcomes[0])
    return 200, results if many else results[0]


def unavailable(exc: HubUnavailable) -> dict[str, str]:
    return {"code": "hub_unavailable", "message": f"{exc.service} unavailable"}
