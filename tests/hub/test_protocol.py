"""hub/socket/protocol.py, sans I/O: parsing client frames, name rules and every server-frame builder.

Pure tests: no server, no database, no sockets (ARCHITECTURE.md house rules 1 and 3).
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone

import pytest

from hub.socket import protocol as p
from hub.socket.protocol import ProtocolError

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
CONTROL = ["connected", "pong", "subscribed", "unsubscribed", "published", "recovered",
           "heartbeat", "error"]


def decode(text: str) -> dict:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def assert_recent_timestamp(value: str) -> None:
    assert ISO_MS_Z.fullmatch(value), value
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(datetime.now(timezone.utc) - moment) < timedelta(seconds=5)


def frame(body: dict) -> p.ClientFrame:
    return p.parse_client_frame(json.dumps(body))


def raises_code(code: str, fn, *args, **kwargs) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, (info.value.code, info.value.message)
    return info.value


# --- purity --------------------------------------------------------------------------------

def test_error_codes_and_control_types_match_protocol_md():
    assert p.ERROR_CODES == {
        "invalid_json", "invalid_message", "unknown_type", "invalid_channel", "unknown_channel",
        "forbidden", "not_authenticated", "rate_limited", "too_many_subscriptions",
        "internal_error"}
    assert p.CONTROL_TYPES == set(CONTROL)
    assert p.DEFAULT_EVENT == "message"
    assert p.MAX_CHANNELS_PER_FRAME == 100


@pytest.mark.parametrize("name, code", [
    ("CLOSE_GOING_AWAY", 1001), ("CLOSE_TOO_LARGE", 1009), ("CLOSE_TRY_AGAIN_LATER", 1013),
    ("CLOSE_AUTH_FAILED", 4001), ("CLOSE_IDLE_TIMEOUT", 4008), ("CLOSE_CLIENT_ID_IN_USE", 4009),
    ("CLOSE_RATE_LIMIT_ABUSE", 4029),
])
def test_close_codes_match_protocol_md(name, code):
    assert getattr(p, name) == code


# --- parse_client_frame ---------------------------------------------------------------------

@pytest.mark.parametrize("text, type_, id_", [
    ('{"type": "ping"}', "ping", None),
    ('{"type": "ping", "id": 7}', "ping", 7),
    ('{"type": "ping", "id": 0}', "ping", 0),
    ('{"type": "ping", "id": -3}', "ping", -3),
    ('{"type": "ping", "id": 123456789012345678901234567890}', "ping",
     123456789012345678901234567890),
    ('{"type": "ping", "id": "abc"}', "ping", "abc"),
    ('{"type": "ping", "id": ""}', "ping", ""),
    ('{"type": "ping", "id": null}', "ping", None),
    ('{"type": "subscribe", "channel": "jobs"}', "subscribe", None),
    ('{"type": "chat_message", "text": "héllo ✓"}', "chat_message", None),
    ('  {"type": "ping"}  \n', "ping", None),
])
def test_parse_valid_frames(text, type_, id_):
    parsed = p.parse_client_frame(text)
    assert parsed.type == type_
    assert parsed.id == id_
    assert parsed.body == json.loads(text)


def test_parsed_frame_is_frozen():
    parsed = p.parse_client_frame('{"type": "ping"}')
    with pytest.raises(Exception):
        parsed.type = "pong"  # type: ignore[misc]


@pytest.mark.parametrize("text", [
    "", " ", "not json", "{", '{"type": "ping"', "{'type': 'ping'}", '{"type": ping}',
    "[1, 2", '{"type": "ping",}',
])
def test_invalid_json(text):
    exc = raises_code(p.INVALID_JSON, p.parse_client_frame, text)
    assert exc.frame_id is None


@pytest.mark.parametrize("text", [
    "[]", '[{"type": "ping"}]', "1", "-2.5", '"ping"', "null", "true", "false",
])
def test_json_that_is_not_an_object_is_invalid_json(text):
    raises_code(p.INVALID_JSON, p.parse_client_frame, text)


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    '{"type": "ping", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"a":' * 50_000 + "1" + "}" * 50_000,
])
def test_deep_nesting_is_invalid_json_not_a_crash(text):
    raises_code(p.INVALID_JSON, p.parse_client_frame, text)


def test_binary_frame_is_invalid_json():
    raises_code(p.INVALID_JSON, p.parse_client_frame, None)


@pytest.mark.parametrize("text", [
    '{"type": "ping", "x": NaN}',
    '{"type": "ping", "x": Infinity}',
    '{"type": "publish", "channel": "c", "data": -Infinity}',
])
def test_non_standard_json_constants_are_invalid_json(text):
    raises_code(p.INVALID_JSON, p.parse_client_frame, text)


@pytest.mark.parametrize("id_text", ["true", "false", "1.5", "1.0", "{}", '{"a": 1}', "[]",
                                     "[1]"])
def test_id_of_wrong_type_is_invalid_message(id_text):
    exc = raises_code(p.INVALID_MESSAGE, p.parse_client_frame,
                      '{"type": "ping", "id": %s}' % id_text)
    assert exc.frame_id is None  # an unusable id is not echoed


@pytest.mark.parametrize("text", [
    "{}",
    '{"id": 4}',
    '{"type": ""}',
    '{"type": null}',
    '{"type": 5}',
    '{"type": true}',
    '{"type": ["ping"]}',
    '{"type": {"name": "ping"}}',
])
def test_missing_empty_or_non_string_type_is_invalid_message(text):
    exc = raises_code(p.INVALID_MESSAGE, p.parse_client_frame, text)
    assert exc.frame_id == json.loads(text).get("id")


def test_missing_type_error_echoes_a_valid_id():
    exc = raises_code(p.INVALID_MESSAGE, p.parse_client_frame, '{"id": "q1", "type": 3}')
    assert exc.frame_id == "q1"
    assert decode(p.build_error_from(exc))["id"] == "q1"


# --- parse_channels / parse_subscribe ----------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ({"channel": "jobs"}, ("jobs",)),
    ({"channels": ["jobs"]}, ("jobs",)),
    ({"channels": ["jobs", "nodes", "alerts"]}, ("jobs", "nodes", "alerts")),
    ({"channels": ["b", "a", "b", "c", "a"]}, ("b", "a", "c")),
    ({"channels": ["x"] * 100}, ("x",)),
    ({"channels": [f"c{i}" for i in range(100)]}, tuple(f"c{i}" for i in range(100))),
    # names are not validated here: the session reports invalid names per channel
    ({"channel": "bad name"}, ("bad name",)),
    ({"channel": ""}, ("",)),
    # channels wins over channel
    ({"channel": "a", "channels": ["b"]}, ("b",)),
])
def test_parse_channels(body, expected):
    got = p.parse_channels(frame({"type": "subscribe", "id": 3, **body}))
    assert got == expected
    assert isinstance(got, tuple)


@pytest.mark.parametrize("body", [
    {},
    {"channels": []},
    {"channels": "jobs"},
    {"channels": {"jobs": 1}},
    {"channels": None},
    {"channels": 3},
    {"channels": [f"c{i}" for i in range(101)]},
    {"channels": ["x"] * 101},  # the limit counts the request, before dedupe
    {"channels": ["jobs", 1]},
    {"channels": ["jobs", None]},
    {"channels": [["jobs"]]},
    {"channel": None},
    {"channel": 5},
    {"channel": ["jobs"]},
    {"channel": True},
])
def test_parse_channels_rejects(body):
    exc = raises_code(p.INVALID_MESSAGE, p.parse_channels, frame({"type": "subscribe", "id": 9,
                                                                  **body}))
    assert exc.frame_id == 9


@pytest.mark.parametrize("body, channels, since", [
    ({"channel": "jobs"}, ("jobs",), {}),
    ({"channel": "jobs", "since": None}, ("jobs",), {}),
    ({"channel": "jobs", "since": 0}, ("jobs",), {"jobs": 0}),
    ({"channel": "jobs", "since": 41}, ("jobs",), {"jobs": 41}),
    ({"channel": "jobs", "since": 2**40}, ("jobs",), {"jobs": 2**40}),
    ({"channels": ["jobs", "nodes"], "since": {"jobs": 3, "nodes": 0}}, ("jobs", "nodes"),
     {"jobs": 3, "nodes": 0}),
    ({"channels": ["jobs", "nodes"], "since": {"nodes": 5}}, ("jobs", "nodes"), {"nodes": 5}),
    ({"channels": ["jobs"], "since": {}}, ("jobs",), {}),
    ({"channel": "jobs", "since": {"jobs": 2}}, ("jobs",), {"jobs": 2}),
])
def test_parse_subscribe(body, channels, since):
    request = p.parse_subscribe(frame({"type": "subscribe", **body}))
    assert request.channels == channels
    assert request.since == since


@pytest.mark.parametrize("body", [
    {"channel": "jobs", "since": -1},
    {"channel": "jobs", "since": True},
    {"channel": "jobs", "since": False},
    {"channel": "jobs", "since": "5"},
    {"channel": "jobs", "since": 1.0},
    {"channel": "jobs", "since": 1.5},
    {"channel": "jobs", "since": [1]},
    # an integer since goes only with channel
    {"channels": ["jobs"], "since": 4},
    {"channels": ["jobs", "nodes"], "since": 4},
    {"channel": "jobs", "channels": ["jobs"], "since": 4},
    # {channel: offset} entries are checked too
    {"channels": ["jobs"], "since": {"jobs": -1}},
    {"channels": ["jobs"], "since": {"jobs": True}},
    {"channels": ["jobs"], "since": {"jobs": "3"}},
    {"channels": ["jobs"], "since": {"jobs": None}},
    {"channels": ["jobs"], "since": {"jobs": 2.0}},
])
def test_parse_subscribe_rejects_bad_since(body):
    exc = raises_code(p.INVALID_MESSAGE, p.parse_subscribe,
                      frame({"type": "subscribe", "id": "s", **body}))
    assert exc.frame_id == "s"


def test_bad_since_entry_names_its_channel():
    exc = raises_code(p.INVALID_MESSAGE, p.parse_subscribe, frame(
        {"type": "subscribe", "channels": ["jobs", "nodes"], "since": {"jobs": 1, "nodes": -2}}))
    assert exc.channel == "nodes"


# --- parse_publish / check_event_name ------------------------------------------------------

@pytest.mark.parametrize("body, event, data", [
    ({"channel": "chat.1", "data": {"t": "hi"}}, "message", {"t": "hi"}),
    ({"channel": "chat.1", "data": None}, "message", None),
    ({"channel": "chat.1", "data": [1, 2]}, "message", [1, 2]),
    ({"channel": "chat.1", "data": "x", "event": None}, "message", "x"),
    ({"channel": "chat.1", "data": 0, "event": "chat_message"}, "chat_message", 0),
    ({"channel": "chat.1", "data": 0, "event": "a.b:c-d_e"}, "a.b:c-d_e", 0),
])
def test_parse_publish(body, event, data):
    request = p.parse_publish(frame({"type": "publish", **body}))
    assert request == p.PublishRequest(channel="chat.1", event=event, data=data)


@pytest.mark.parametrize("body, channel", [
    ({"data": 1}, None),
    ({"channel": None, "data": 1}, None),
    ({"channel": 5, "data": 1}, None),
    ({"channel": ["a"], "data": 1}, None),
    ({"channel": "c"}, "c"),
    ({"channel": "c", "data": 1, "event": "heartbeat"}, "c"),
    ({"channel": "c", "data": 1, "event": "error"}, "c"),
    ({"channel": "c", "data": 1, "event": ""}, "c"),
    ({"channel": "c", "data": 1, "event": 3}, "c"),
    ({"channel": "c", "data": 1, "event": "has space"}, "c"),
])
def test_parse_publish_rejects(body, channel):
    exc = raises_code(p.INVALID_MESSAGE, p.parse_publish,
                      frame({"type": "publish", "id": 11, **body}))
    assert exc.frame_id == 11
    assert exc.channel == channel


@pytest.mark.parametrize("event", CONTROL)
def test_control_types_are_never_event_names(event):
    raises_code(p.INVALID_MESSAGE, p.check_event_name, event)


@pytest.mark.parametrize("event, expected", [
    (None, "message"),
    ("message", "message"),
    ("job_state_changed", "job_state_changed"),
    ("ping", "ping"),
    ("Connected", "Connected"),  # only the exact control names are reserved
    ("a" * 100, "a" * 100),
    ("x:y.z-w_1", "x:y.z-w_1"),
])
def test_check_event_name_accepts(event, expected):
    assert p.check_event_name(event) == expected


@pytest.mark.parametrize("event", [
    "", "a" * 101, "has space", "slash/y", "quote\"", "nl\n", "jobs\n", "é", "日本",
    "<script>", 1, 0, True, False, 1.5, [], {}, ["message"],
])
def test_check_event_name_rejects(event):
    raises_code(p.INVALID_MESSAGE, p.check_event_name, event)


# --- name rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "a", "jobs", "user:alice", "stock_updates", "test_channel", "chat.room-1", "A9", "-",
    ":", "_", ".", "a" * 100, ":" * 100, "_" * 100, "x:_.-" * 20,
])
def test_valid_channel_names(name):
    assert p.is_valid_channel(name) is True


@pytest.mark.parametrize("name", [
    "", "a" * 101, ":" * 101, "has space", " jobs", "jobs ", "a/b", "a\\b", "jobs\n", "\njobs",
    "jobs\t", "é", "ümlaut", "日本", "Ａ", "١٢", "a*", "a#b", "a?b", "a@b", "a,b", "a+b",
    "a\x00b", None, 5, ["jobs"], b"jobs",
])
def test_invalid_channel_names(name):
    assert p.is_valid_channel(name) is False


@pytest.mark.parametrize("name", [
    "user:carol@example.edu", "user:a+b", "user:d.e-f", "user:jürgen", "user:日本", "user:a_b",
    "user:" + "x" * 150, "user:" + "é" * 150, "user:@", "user:+", "user:١٢",
])
def test_user_channels_take_any_django_username(name):
    """PROTOCOL.md §4: ``user:<username>`` for every name Django's UnicodeUsernameValidator
    accepts (SSO logins are e-mail addresses), up to AbstractUser's 150 characters."""
    from django.contrib.auth.validators import UnicodeUsernameValidator

    UnicodeUsernameValidator()(name[5:])
    assert p.is_valid_channel(name) is True


@pytest.mark.parametrize("name", [
    "user:" + "x" * 151, "user:a b", "user:a/b", "user:a\nb", "user:carol\n", "user:a*",
    "user:a#b", "user:a,b", "user:\ud800", "user:a\x00", "users:a@b", "User:a@b",
    "chat:a@b", "a@b", "user:a:b@c",
])
def test_the_wider_alphabet_is_for_user_channels_only(name):
    assert p.is_valid_channel(name) is False


@pytest.mark.parametrize("client_id, ok", [
    ("a", True), ("c_3f9a", True), ("A-Z.0_9", True), ("x" * 64, True), ("-", True),
    ("", False), ("x" * 65, False), ("a:b", False), ("a b", False), ("a/b", False),
    ("é", False), ("id\n", False), ("a*", False),
])
def test_is_valid_client_id(client_id, ok):
    assert p.is_valid_client_id(client_id) is ok


# --- timestamps --------------------------------------------------------------------------------

@pytest.mark.parametrize("moment, expected", [
    (datetime(2026, 11, 22, 10, 0, 0, tzinfo=timezone.utc), "2026-11-22T10:00:00.000Z"),
    (datetime(2026, 11, 22, 10, 0, 5, 120_000, tzinfo=timezone.utc), "2026-11-22T10:00:05.120Z"),
    (datetime(2026, 11, 22, 10, 0, 5, 120_999, tzinfo=timezone.utc), "2026-11-22T10:00:05.120Z"),
    (datetime(2026, 11, 22, 12, 0, 5, 1_000, tzinfo=timezone(timedelta(hours=2))),
     "2026-11-22T10:00:05.001Z"),
    (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5))),
     "2026-01-01T05:30:00.000Z"),
])
def test_utc_timestamp(moment, expected):
    assert p.utc_timestamp(moment) == expected


def test_utc_timestamp_now():
    assert_recent_timestamp(p.utc_timestamp())


# --- builders: exact keys and values ----------------------------------------------------------

def test_build_connected():
    out = decode(p.build_connected(client_id="c_1", user="alice", server="hub-1",
                                   heartbeat_interval=30))
    assert set(out) == {"type", "client_id", "user", "server", "heartbeat_interval", "timestamp"}
    assert out["type"] == "connected"
    assert (out["client_id"], out["user"], out["server"]) == ("c_1", "alice", "hub-1")
    assert out["heartbeat_interval"] == 30 and isinstance(out["heartbeat_interval"], int)
    assert_recent_timestamp(out["timestamp"])


@pytest.mark.parametrize("interval, expected", [(30.0, 30), (30, 30), (2.5, 2.5), (0.25, 0.25)])
def test_build_connected_interval(interval, expected):
    out = decode(p.build_connected(client_id="c", user=None, server="s",
                                   heartbeat_interval=interval))
    assert out["heartbeat_interval"] == expected
    assert type(out["heartbeat_interval"]) is type(expected)


def test_build_connected_anonymous_with_id():
    out = decode(p.build_connected(client_id="c", user=None, server="s", heartbeat_interval=5,
                                   frame_id="a1"))
    assert set(out) == {"type", "client_id", "user", "server", "heartbeat_interval", "timestamp",
                        "id"}
    assert out["user"] is None
    assert out["id"] == "a1"


@pytest.mark.parametrize("frame_id, keys", [
    (None, {"type", "timestamp"}),
    (7, {"type", "timestamp", "id"}),
    ("x", {"type", "timestamp", "id"}),
    (0, {"type", "timestamp", "id"}),
    ("", {"type", "timestamp", "id"}),
])
def test_build_pong(frame_id, keys):
    out = decode(p.build_pong(frame_id))
    assert set(out) == keys
    assert out["type"] == "pong"
    assert out.get("id") == frame_id
    assert_recent_timestamp(out["timestamp"])


def test_build_heartbeat():
    out = decode(p.build_heartbeat())
    assert set(out) == {"type", "timestamp"}
    assert out["type"] == "heartbeat"
    assert_recent_timestamp(out["timestamp"])


@pytest.mark.parametrize("kwargs, expected", [
    ({}, {"type": "error", "code": "forbidden", "message": "m"}),
    ({"channel": "jbos"}, {"type": "error", "code": "forbidden", "message": "m",
                           "channel": "jbos"}),
    ({"frame_id": 7}, {"type": "error", "code": "forbidden", "message": "m", "id": 7}),
    ({"frame_id": 0}, {"type": "error", "code": "forbidden", "message": "m", "id": 0}),
    ({"channel": "jbos", "frame_id": "q"},
     {"type": "error", "code": "forbidden", "message": "m", "channel": "jbos", "id": "q"}),
    ({"channel": None, "frame_id": None}, {"type": "error", "code": "forbidden", "message": "m"}),
])
def test_build_error(kwargs, expected):
    assert decode(p.build_error("forbidden", "m", **kwargs)) == expected


def test_build_error_from_protocol_error():
    exc = ProtocolError(p.UNKNOWN_CHANNEL, "no channel 'jbos'", channel="jbos", frame_id=7)
    assert decode(p.build_error_from(exc)) == {
        "type": "error", "code": "unknown_channel", "message": "no channel 'jbos'",
        "channel": "jbos", "id": 7}
    assert str(exc) == "no channel 'jbos'"


def test_build_error_unicode_message_survives():
    assert decode(p.build_error("invalid_channel", "invalid channel name 'é'"))["message"] == \
        "invalid channel name 'é'"


@pytest.mark.parametrize("frame_id, expected", [
    (None, {"type": "subscribed", "channel": "jobs", "offset": 41, "epoch": "k2f8"}),
    (3, {"type": "subscribed", "channel": "jobs", "offset": 41, "epoch": "k2f8", "id": 3}),
])
def test_build_subscribed(frame_id, expected):
    assert decode(p.build_subscribed("jobs", 41, "k2f8", frame_id)) == expected


@pytest.mark.parametrize("frame_id, expected", [
    (None, {"type": "unsubscribed", "channel": "jobs"}),
    ("u", {"type": "unsubscribed", "channel": "jobs", "id": "u"}),
])
def test_build_unsubscribed(frame_id, expected):
    assert decode(p.build_unsubscribed("jobs", frame_id)) == expected


@pytest.mark.parametrize("frame_id, expected", [
    (None, {"type": "published", "channel": "chat.1", "offset": 5}),
    (1, {"type": "published", "channel": "chat.1", "offset": 5, "id": 1}),
])
def test_build_published(frame_id, expected):
    assert decode(p.build_published("chat.1", 5, frame_id)) == expected


@pytest.mark.parametrize("args, expected", [
    (("jobs", True, 3), {"type": "recovered", "channel": "jobs", "recovered": True, "missed": 3}),
    (("jobs", True, 0), {"type": "recovered", "channel": "jobs", "recovered": True, "missed": 0}),
    (("jobs", True, None), {"type": "recovered", "channel": "jobs", "recovered": True,
                            "missed": 0}),
    (("jobs", False, None), {"type": "recovered", "channel": "jobs", "recovered": False}),
    (("jobs", False, 3), {"type": "recovered", "channel": "jobs", "recovered": False}),
])
def test_build_recovered(args, expected):
    assert decode(p.build_recovered(*args)) == expected


PUBLICATION_CASES = [
    ("job_state_changed", "jobs", 42, "2026-11-22T10:00:05.120Z",
     {"job_id": "12345", "state": "RUNNING", "previous_state": "PENDING"}),
    ("message", "stock_updates", 0, "2026-11-22T10:00:05.120Z", None),
    ("message", "user:alice", 7, "t", [1, "two", 3.5, True, None]),
    ("notification", "notifications", 2**40, "t", "plain string"),
    ("message", "c", 1, "t", {"text": "héllo \"quoted\" \\ ✓ \u2028 </script>"}),
    ("message", "c", 1, "t", {"nested": {"deep": [[{"x": 1}]]}, "int_key_ok": {1: "a"}}),
    ("message", "c", 1, "t", 0),
    ("message", "c", 1, "t", -1.25e-7),
    ("message", "c", 1, "t", {}),
]


@pytest.mark.parametrize("event, channel, offset, timestamp, data", PUBLICATION_CASES)
def test_build_publication(event, channel, offset, timestamp, data):
    text = p.build_publication(event=event, channel=channel, offset=offset, timestamp=timestamp,
                               data=data)
    out = decode(text)
    assert list(out) == ["type", "channel", "offset", "timestamp", "data"]
    assert out == {"type": event, "channel": channel, "offset": offset, "timestamp": timestamp,
                   "data": json.loads(json.dumps(data))}


@pytest.mark.parametrize("event, channel, offset, timestamp, data", PUBLICATION_CASES)
def test_build_publication_parts_join_to_the_same_frame(event, channel, offset, timestamp, data):
    head, tail = p.build_publication_parts(event=event, channel=channel, timestamp=timestamp,
                                           data=data)
    joined = head + str(offset) + tail
    assert joined == p.build_publication(event=event, channel=channel, offset=offset,
                                         timestamp=timestamp, data=data)
    assert decode(joined)["offset"] == offset
    # the same parts work for any offset: the history backend assigns it later
    for other in (0, 1, 99, 10**12):
        assert decode(head + str(other) + tail)["offset"] == other


class _NotJson:
    pass


def _deep(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("data", [
    float("nan"), float("inf"), float("-inf"), {"x": math.nan}, [1, float("inf")],
    {1, 2}, _NotJson(), {"x": object()}, b"bytes", {("tuple", "key"): 1}, _deep(100_000),
])
@pytest.mark.parametrize("builder", ["parts", "whole"])
def test_publication_of_non_json_data_is_invalid_message(data, builder):
    if builder == "parts":
        exc = raises_code(p.INVALID_MESSAGE, p.build_publication_parts, event="message",
                          channel="c", timestamp="t", data=data)
    else:
        exc = raises_code(p.INVALID_MESSAGE, p.build_publication, event="message", channel="c",
                          offset=1, timestamp="t", data=data)
    assert exc.code == "invalid_message"


@pytest.mark.parametrize("text", [
    p.build_connected(client_id="c", user="u", server="s", heartbeat_interval=1),
    p.build_pong(1), p.build_heartbeat(), p.build_error("forbidden", "m"),
    p.build_subscribed("c", 1, "e"), p.build_unsubscribed("c"), p.build_published("c", 1),
    p.build_recovered("c", True, 1),
    p.build_publication(event="message", channel="c", offset=1, timestamp="t", data={"a": 1}),
])
def test_every_builder_returns_one_compact_json_object_text(text):
    assert isinstance(text, str)
    assert "\n" not in text
    assert ": " not in text  # compact separators
    assert isinstance(json.loads(text), dict)


@pytest.mark.parametrize("data", ["\ud800", {"text": "a\udfffb"}, {"k\ud83d": 1}, ["\udc00"]])
def test_publication_text_is_always_utf8_encodable(data):
    try:
        text = p.build_publication(event="message", channel="c", offset=1, timestamp="t",
                                   data=data)
    except ProtocolError as exc:
        assert exc.code == p.INVALID_MESSAGE
        return
    text.encode("utf-8")


@pytest.mark.parametrize("text", [
    '{"type": "ping", "id": "\\ud800"}',
    '{"type": "ping", "id": "ok\\udfff"}',
])
def test_frames_with_lone_surrogates_are_refused_or_echo_safely(text):
    try:
        parsed = p.parse_client_frame(text)
    except ProtocolError as exc:
        assert exc.code in (p.INVALID_JSON, p.INVALID_MESSAGE)
        p.build_error_from(exc).encode("utf-8")
        return
    p.build_pong(parsed.id).encode("utf-8")
