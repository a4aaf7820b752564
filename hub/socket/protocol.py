"""The wire protocol (PROTOCOL.md v1), sans I/O: parse client frames, build server frames.

Pure: standard library only. Every server frame has exactly one builder here, and every
builder returns the finished text, so the engine encodes a publication once and each
subscriber's socket gets the same string.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

# --- close codes (PROTOCOL.md §3); 4000-4999 are the hub's own -----------------------------
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_LARGE = 1009
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_AUTH_FAILED = 4001
CLOSE_IDLE_TIMEOUT = 4008
CLOSE_CLIENT_ID_IN_USE = 4009
CLOSE_SLOW_CONSUMER = 4010
CLOSE_RATE_LIMIT_ABUSE = 4029

# --- error codes -------------------------------------------------------------------------
INVALID_JSON = "invalid_json"
INVALID_MESSAGE = "invalid_message"
UNKNOWN_TYPE = "unknown_type"
INVALID_CHANNEL = "invalid_channel"
UNKNOWN_CHANNEL = "unknown_channel"
FORBIDDEN = "forbidden"
NOT_AUTHENTICATED = "not_authenticated"
RATE_LIMITED = "rate_limited"
TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"
INTERNAL_ERROR = "internal_error"
ERROR_CODES = frozenset({
    INVALID_JSON, INVALID_MESSAGE, UNKNOWN_TYPE, INVALID_CHANNEL, UNKNOWN_CHANNEL, FORBIDDEN,
    NOT_AUTHENTICATED, RATE_LIMITED, TOO_MANY_SUBSCRIPTIONS, INTERNAL_ERROR,
})

CONTROL_TYPES = frozenset({
    "connected", "pong", "subscribed", "unsubscribed", "published", "recovered", "heartbeat",
    "error",
})
BUILTIN_CLIENT_TYPES = frozenset({"ping", "pong", "auth", "subscribe", "unsubscribe", "publish"})
DEFAULT_EVENT = "message"
MAX_CHANNELS_PER_FRAME = 100

_CHANNEL_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
# ``user:<username>`` takes any name Django's UnicodeUsernameValidator allows (unicode
# ``\w`` plus ``.@+-``, at most 150: AbstractUser.username's max_length): SSO logins are
# e-mail addresses, and a user whose own channel name is refused could not connect at all.
USER_CHANNEL_PREFIX = "user:"
_USERNAME_RE = re.compile(r"[\w.@+\-]{1,150}")
_CLIENT_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_EVENT_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")


class ProtocolError(Exception):
    """A client frame the hub refuses; becomes one ``error`` frame, never a close."""

    def __init__(self, code: str, message: str, *, channel: str | None = None,
                 frame_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.channel = channel
        self.frame_id = frame_id


@dataclass(frozen=True)
class ClientFrame:
    type: str
    id: Any  # str | int | None, echoed on the direct reply
    body: dict[str, Any]


def is_valid_channel(name: Any) -> bool:
    """PROTOCOL.md §4: 1-100 of ``A-Za-z0-9_.:-``, or ``user:`` + any Django username."""
    if not isinstance(name, str):
        return False
    if _CHANNEL_RE.fullmatch(name) is not None:
        return True
    return name.startswith(USER_CHANNEL_PREFIX) and is_valid_username(name[5:])


def is_valid_username(name: Any) -> bool:
    """A name Django's default username validator accepts (what ``user:<name>`` takes)."""
    return isinstance(name, str) and _USERNAME_RE.fullmatch(name) is not None


def is_valid_client_id(client_id: str) -> bool:
    return _CLIENT_ID_RE.fullmatch(client_id) is not None


def check_event_name(event: Any) -> str:
    """The event name a publisher gave, validated; raises ProtocolError(invalid_message)."""
    if event is None:
        return DEFAULT_EVENT
    if not isinstance(event, str) or _EVENT_RE.fullmatch(event) is None:
        raise ProtocolError(INVALID_MESSAGE, "event must be 1-100 characters of A-Za-z0-9_.:-")
    if event in CONTROL_TYPES:
        raise ProtocolError(INVALID_MESSAGE, f"event name {event!r} is reserved")
    return event


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def parse_client_frame(text: str | None) -> ClientFrame:
    """Decode one text frame; raises ProtocolError for anything that is not a usable frame."""
    if text is None:
        raise ProtocolError(INVALID_JSON, "frames must be JSON text frames, not binary")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ProtocolError(INVALID_JSON, "frame is not valid JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(INVALID_JSON, "frame must be a JSON object")
    frame_id = value.get("id")
    if frame_id is not None and (isinstance(frame_id, bool) or not isinstance(frame_id, (str, int))):
        raise ProtocolError(INVALID_MESSAGE, "id must be a string or an integer")
    frame_type = value.get("type")
    if not isinstance(frame_type, str) or not frame_type:
        raise ProtocolError(INVALID_MESSAGE, "type is missing or not a string", frame_id=frame_id)
    return ClientFrame(type=frame_type, id=frame_id, body=value)


@dataclass(frozen=True)
class SubscribeRequest:
    channels: tuple[str, ...]  # as requested, validity checked per channel later
    since: dict[str, int]


def parse_channels(frame: ClientFrame) -> tuple[Any, ...]:
    """``channel`` or ``channels`` of a (un)subscribe frame, in request order, deduplicated."""
    body = frame.body
    if "channels" in body:
        channels = body["channels"]
        if not isinstance(channels, list) or not channels:
            raise ProtocolError(INVALID_MESSAGE, "channels must be a non-empty list",
                                frame_id=frame.id)
        if len(channels) > MAX_CHANNELS_PER_FRAME:
            raise ProtocolError(INVALID_MESSAGE,
                                f"at most {MAX_CHANNELS_PER_FRAME} channels per frame",
                                frame_id=frame.id)
    elif "channel" in body:
        channels = [body["channel"]]
    else:
        raise ProtocolError(INVALID_MESSAGE, "channel or channels is required", frame_id=frame.id)
    seen: dict[Any, None] = {}
    for name in channels:
        if not isinstance(name, str):
            raise ProtocolError(INVALID_MESSAGE, "channel names must be strings", frame_id=frame.id)
        seen.setdefault(name, None)
    return tuple(seen)


def _valid_offset(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_subscribe(frame: ClientFrame) -> SubscribeRequest:
    channels = parse_channels(frame)
    since_raw = frame.body.get("since")
    since: dict[str, int] = {}
    if since_raw is None:
        pass
    elif isinstance(since_raw, dict):
        for name, offset in since_raw.items():
            if not _valid_offset(offset):
                raise ProtocolError(INVALID_MESSAGE, "since offsets must be integers >= 0",
                                    frame_id=frame.id, channel=name)
            since[name] = offset
    elif _valid_offset(since_raw):
        if "channel" not in frame.body or "channels" in frame.body:
            raise ProtocolError(INVALID_MESSAGE, "an integer since goes with channel; "
                                "use {channel: offset} with channels", frame_id=frame.id)
        since[channels[0]] = since_raw
    else:
        raise ProtocolError(INVALID_MESSAGE, "since must be an offset or {channel: offset}",
                            frame_id=frame.id)
    return SubscribeRequest(channels=channels, since=since)


@dataclass(frozen=True)
class PublishRequest:
    channel: str
    event: str
    data: Any


def parse_publish(frame: ClientFrame) -> PublishRequest:
    channel = frame.body.get("channel")
    if not isinstance(channel, str):
        raise ProtocolError(INVALID_MESSAGE, "channel is required and must be a string",
                            frame_id=frame.id)
    if "data" not in frame.body:
        raise ProtocolError(INVALID_MESSAGE, "data is required", frame_id=frame.id, channel=channel)
    try:
        event = check_event_name(frame.body.get("event"))
    except ProtocolError as exc:
        raise ProtocolError(exc.code, exc.message, frame_id=frame.id, channel=channel) from None
    return PublishRequest(channel=channel, event=event, data=frame.body["data"])


# --- server frames: one builder each -----------------------------------------------------

def utc_timestamp(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(frame: dict[str, Any]) -> str:
    """Compact JSON. ASCII-only on purpose: a client may send a lone surrogate as a JSON
    escape (``"\\ud800"``); echoed raw it could not be encoded to UTF-8 and the frame
    would be lost, escaped it is valid text."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=True)


def _with_id(frame: dict[str, Any], frame_id: Any) -> dict[str, Any]:
    if frame_id is not None:
        frame["id"] = frame_id
    return frame


def build_connected(*, client_id: str, user: str | None, server: str, heartbeat_interval: float,
                    frame_id: Any = None) -> str:
    interval = int(heartbeat_interval) if float(heartbeat_interval).is_integer() else heartbeat_interval
    return encode(_with_id({
        "type": "connected", "client_id": client_id, "user": user, "server": server,
        "heartbeat_interval": interval, "timestamp": utc_timestamp(),
    }, frame_id))


def build_pong(frame_id: Any = None) -> str:
    return encode(_with_id({"type": "pong", "timestamp": utc_timestamp()}, frame_id))


def build_heartbeat() -> str:
    return encode({"type": "heartbeat", "timestamp": utc_timestamp()})


def build_error(code: str, message: str, *, channel: str | None = None,
                frame_id: Any = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if channel is not None:
        frame["channel"] = channel
    return encode(_with_id(frame, frame_id))


def build_error_from(exc: ProtocolError) -> str:
    return build_error(exc.code, exc.message, channel=exc.channel, frame_id=exc.frame_id)


def build_subscribed(channel: str, offset: int, epoch: str, frame_id: Any = None) -> str:
    return encode(_with_id({"type": "subscribed", "channel": channel, "offset": offset,
                            "epoch": epoch}, frame_id))


def build_unsubscribed(channel: str, frame_id: Any = None) -> str:
    return encode(_with_id({"type": "unsubscribed", "channel": channel}, frame_id))


def build_published(channel: str, offset: int, frame_id: Any = None) -> str:
    return encode(_with_id({"type": "published", "channel": channel, "offset": offset}, frame_id))


def build_recovered(channel: str, recovered: bool, missed: int | None = None) -> str:
    frame: dict[str, Any] = {"type": "recovered", "channel": channel, "recovered": recovered}
    if recovered:
        frame["missed"] = missed or 0
    return encode(frame)


class EncodedData:
    """A publication's ``data`` already encoded (``encode_data``): a publisher that had to
    encode it anyway (the REST route measures each message's size) hands the text on, and
    the engine does not encode it a second time. Made only by ``encode_data``, so it holds
    valid compact ASCII JSON."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def encode_data(data: Any) -> EncodedData:
    """``data`` as the frame carries it: compact ASCII JSON (see ``encode``). Raises
    ProtocolError(invalid_message) when it is not JSON (NaN and Infinity included)."""
    if type(data) is EncodedData:
        return data
    try:
        return EncodedData(json.dumps(data, separators=(",", ":"), ensure_ascii=True,
                                      allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise ProtocolError(INVALID_MESSAGE, "data must be JSON-serialisable") from None


def publication_head(event: str, channel: str) -> str:
    """A publication frame up to its offset (the same for every publication of this event
    on this channel)."""
    return f'{{"type":{json.dumps(event)},"channel":{json.dumps(channel)},"offset":'


def publication_tail(timestamp: str, data: Any) -> str:
    """A publication frame after its offset. ``data`` may be ``EncodedData``."""
    return tail_start(timestamp) + encode_data(data).text + "}"


def tail_start(timestamp: str) -> str:
    """The part of ``publication_tail`` before the data (shared by a list's publications)."""
    return f',"timestamp":{json.dumps(timestamp)},"data":'


def build_publication_parts(*, event: str, channel: str, timestamp: str,
                            data: Any) -> tuple[str, str]:
    """A publication frame split around its offset: ``head + str(offset) + tail``.

    The history backend assigns the offset atomically and joins the parts, so the frame is
    still encoded once. Raises ProtocolError(invalid_message) when ``data`` is not JSON."""
    return publication_head(event, channel), publication_tail(timestamp, data)


def build_publication(*, event: str, channel: str, offset: int, timestamp: str, data: Any) -> str:
    """A publication frame; built once per publication and shared by every subscriber."""
    head, tail = build_publication_parts(event=event, channel=channel, timestamp=timestamp,
                                         data=data)
    return f"{head}{offset}{tail}"


# --- the id of a frame that will not be parsed (a rate-limited one) ------------------------

PEEK_PARSE_BELOW = 512  # characters: a frame this short is simply parsed (C json is cheapest)
PEEK_SCAN_LIMIT = 4096  # characters of a longer frame scanned for a top-level "id"
_PEEK_MARKS = re.compile(r'[{}\[\]"]')
_PEEK_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_PEEK_DECODER = json.JSONDecoder()


def peek_frame_id(text: Any) -> Any:
    """The top-level ``id`` of a client frame, cheaply, for a reply to a frame that is
    dropped unparsed (``rate_limited``: PROTOCOL.md §3 says the direct reply echoes it).

    Why not ``json.loads``: a flooding client's frames may be up to HUB_MAX_MESSAGE_SIZE;
    parsing each one to answer "dropped" would make the rate limit cost what it saves.
    So: a frame under PEEK_PARSE_BELOW characters is parsed; a longer one is scanned over
    its first PEEK_SCAN_LIMIT characters only, tracking nesting depth and strings, for the
    first ``"id"`` key at depth 1 (clients put ``id`` near the start; one placed after
    4 KB of other fields is not found and the reply has no ``id``). Returns a string or
    an integer (the id types §3 allows), else None; never raises, whatever the input."""
    if not isinstance(text, str):
        return None
    try:
        if len(text) < PEEK_PARSE_BELOW:
            value = json.loads(text)
            found = value.get("id") if isinstance(value, dict) else None
        else:
            found = _scan_for_id(text[:PEEK_SCAN_LIMIT])
    except (ValueError, RecursionError, TypeError):
        return None
    if isinstance(found, bool) or not isinstance(found, (str, int)):
        return None
    return found


def _scan_for_id(prefix: str) -> Any:
    start = len(prefix) - len(prefix.lstrip())
    if not prefix.startswith("{", start):
        return None
    depth, pos = 0, start
    while True:
        mark = _PEEK_MARKS.search(prefix, pos)
        if mark is None:
            return None
        char, pos = mark.group(), mark.start()
        if char in "{[":
            depth, pos = depth + 1, pos + 1
        elif char in "}]":
            depth, pos = depth - 1, pos + 1
            if depth <= 0:
                return None
        else:
            string = _PEEK_STRING.match(prefix, pos)
            if string is None:
                return None  # cut off inside a string
            pos = string.end()
            if depth == 1 and len(string.group()) <= 16:
                colon = pos + len(prefix[pos:pos + 32]) - len(prefix[pos:pos + 32].lstrip())
                if prefix.startswith(":", colon) and json.loads(string.group()) == "id":
                    value_at = colon + 1
                    value_at += len(prefix[value_at:value_at + 32]) - len(
                        prefix[value_at:value_at + 32].lstrip())
                    value, end = _PEEK_DECODER.raw_decode(prefix, value_at)
                    return value if end < len(prefix) else None  # else perhaps cut off
