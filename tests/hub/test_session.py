"""hub/socket/session.py: one client frame in, a list of effects out (PROTOCOL.md §2-§4).

Pure tests: no server, no database, no sockets.
"""

from __future__ import annotations

import json

import pytest

from hub.socket import protocol as p
from hub.socket import session as s
from hub.policies import ANONYMOUS, Principal, build_policies
from hub.socket.session import (Authenticate, Close, Dispatch, Publish, RateWindow, Reply, Session,
                         Subscribe, SubscribeItem, Unsubscribe)

ALICE = Principal("alice")
STAFF = Principal("root", is_staff=True)
T0 = 1_000.0

DEFAULT_POLICIES = build_policies({}, default_history=100)
NO_CATCH_ALL = build_policies({
    "*": None,
    "chat.*": {"subscribe": "authenticated", "publish": "authenticated"},
    "ops": {"subscribe": "staff", "publish": "staff"},
    "board": {"subscribe": "anyone", "publish": "anyone"},
}, default_history=100)


def make_session(*, policies=DEFAULT_POLICIES, require_auth=True, max_subscriptions=10,
                 limit=1000, registered=(), principal=None) -> Session:
    session = Session(client_id="c_1", policies=policies, require_auth=require_auth,
                      max_subscriptions=max_subscriptions, rate=RateWindow(limit),
                      is_registered_type=lambda kind: kind in registered)
    if principal is not None:
        implicit = {"all"} | ({f"user:{principal.username}"} if principal.username else set())
        session.set_principal(principal, implicit)
    return session


def send(session: Session, body, now: float = T0):
    text = body if isinstance(body, str) or body is None else json.dumps(body)
    return session.receive(text, now)


def only(effects):
    assert len(effects) == 1, effects
    return effects[0]


def error_of(effect) -> dict:
    assert isinstance(effect, Reply), effect
    frame = json.loads(effect.text)
    assert frame["type"] == "error"
    assert effect.error == frame["code"]
    return frame


# --- ping / pong / auth ------------------------------------------------------------------------

@pytest.mark.parametrize("require_auth, principal", [
    (True, None), (True, ALICE), (False, None), (False, ANONYMOUS),
])
@pytest.mark.parametrize("frame_id", [None, 7, "p1", 0])
def test_ping_gets_pong_echoing_id(require_auth, principal, frame_id):
    session = make_session(require_auth=require_auth, principal=principal)
    body = {"type": "ping"} if frame_id is None else {"type": "ping", "id": frame_id}
    reply = only(send(session, body))
    assert isinstance(reply, Reply) and reply.error is None
    out = json.loads(reply.text)
    assert out["type"] == "pong"
    assert out.get("id") == frame_id
    assert set(out) == ({"type", "timestamp"} | ({"id"} if frame_id is not None else set()))


@pytest.mark.parametrize("principal", [None, ALICE])
def test_pong_has_no_effect_once_admitted(principal):
    session = make_session(require_auth=principal is not None, principal=principal)
    assert send(session, {"type": "pong"}) == []
    assert send(session, {"type": "pong", "id": 3}) == []


def test_pong_before_auth_is_not_authenticated():
    session = make_session(require_auth=True)
    assert error_of(only(send(session, {"type": "pong"})))["code"] == "not_authenticated"


@pytest.mark.parametrize("frame_id", [None, 4, "a"])
def test_auth_with_token(frame_id):
    session = make_session(require_auth=True)
    body = {"type": "auth", "token": "tok-123"}
    if frame_id is not None:
        body["id"] = frame_id
    assert only(send(session, body)) == Authenticate("tok-123", frame_id)


@pytest.mark.parametrize("body", [
    {"type": "auth"},
    {"type": "auth", "token": ""},
    {"type": "auth", "token": None},
    {"type": "auth", "token": 123},
    {"type": "auth", "token": ["t"]},
    {"type": "auth", "token": {"t": 1}},
])
def test_auth_without_usable_token_is_invalid_message(body):
    session = make_session(require_auth=True)
    out = error_of(only(send(session, {**body, "id": 5})))
    assert out["code"] == "invalid_message"
    assert out["id"] == 5


def test_auth_passes_after_authentication_too():
    session = make_session(principal=ALICE)
    assert only(send(session, {"type": "auth", "token": "t"})) == Authenticate("t", None)


@pytest.mark.parametrize("body", [
    {"type": "subscribe", "channel": "jobs"},
    {"type": "unsubscribe", "channel": "jobs"},
    {"type": "publish", "channel": "chat.1", "data": 1},
    {"type": "chat_message", "text": "hi"},
    {"type": "nonsense"},
    {"type": "connected"},
    {"type": "subscribe"},  # even a malformed frame: authentication comes first
])
def test_unauthenticated_socket_gets_not_authenticated(body):
    session = make_session(require_auth=True, registered={"chat_message"})
    out = error_of(only(send(session, {**body, "id": 9})))
    assert out["code"] == "not_authenticated"
    assert out["id"] == 9


def test_anonymous_principal_is_still_not_authenticated():
    session = make_session(require_auth=True, principal=ANONYMOUS)
    assert session.authenticated is False and session.admitted is False
    assert error_of(only(send(session, {"type": "subscribe", "channel": "jobs"})))["code"] == \
        "not_authenticated"


def test_set_principal_admits_and_subscribe_works():
    session = make_session(require_auth=True)
    assert session.admitted is False
    session.set_principal(ALICE, {"all", "user:alice"})
    assert session.authenticated is True and session.admitted is True
    effect = only(send(session, {"type": "subscribe", "channel": "jobs", "id": 1}))
    assert effect == Subscribe((SubscribeItem("jobs", None, None),), 1)


def test_auth_off_admits_anonymous():
    session = make_session(require_auth=False)
    assert session.admitted is True and session.authenticated is False
    assert only(send(session, {"type": "subscribe", "channel": "stock_updates"})) == \
        Subscribe((SubscribeItem("stock_updates", None, None),), None)


# --- frame errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("text, code", [
    (None, "invalid_json"),
    ("nope", "invalid_json"),
    ("[1]", "invalid_json"),
    ("[" * 100_000, "invalid_json"),
    ('{"id": 1}', "invalid_message"),
    ('{"type": "ping", "id": true}', "invalid_message"),
    ('{"type": "ping", "id": 1.5}', "invalid_message"),
])
def test_bad_frames_get_error_replies(text, code):
    session = make_session(principal=ALICE)
    assert error_of(only(session.receive(text, T0)))["code"] == code


# --- types ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["nonsense", "chat_messages", "Ping", "SUBSCRIBE"])
def test_unregistered_type_is_unknown_type(kind):
    session = make_session(principal=ALICE, registered={"chat_message"})
    out = error_of(only(send(session, {"type": kind, "id": "k"})))
    assert out["code"] == "unknown_type"
    assert out["id"] == "k"


@pytest.mark.parametrize("kind", sorted(p.CONTROL_TYPES - {"pong"}))
def test_control_types_are_unknown_even_if_registered(kind):
    session = make_session(principal=ALICE, registered=set(p.CONTROL_TYPES))
    assert error_of(only(send(session, {"type": kind})))["code"] == "unknown_type"


@pytest.mark.parametrize("kind", ["chat_message", "echo", "x.y:z"])
def test_registered_type_is_dispatched(kind):
    session = make_session(principal=ALICE, registered={"chat_message", "echo", "x.y:z"})
    body = {"type": kind, "id": 3, "text": "hi"}
    effect = only(send(session, body))
    assert isinstance(effect, Dispatch)
    assert effect.frame == p.ClientFrame(type=kind, id=3, body=body)


def test_registered_type_dispatched_with_auth_off():
    session = make_session(require_auth=False, registered={"chat_message"})
    assert isinstance(only(send(session, {"type": "chat_message"})), Dispatch)


def test_builtin_types_win_over_registration():
    session = make_session(principal=ALICE, registered={"ping", "subscribe"})
    assert json.loads(only(send(session, {"type": "ping"})).text)["type"] == "pong"
    assert isinstance(only(send(session, {"type": "subscribe", "channel": "jobs"})), Subscribe)


# --- subscribe --------------------------------------------------------------------------------

def test_subscribe_items_in_request_order_mixing_errors():
    session = make_session(policies=NO_CATCH_ALL, principal=ALICE, max_subscriptions=3)
    session.subscriptions.update({"chat.old"})
    effect = only(send(session, {"type": "subscribe", "id": 42, "channels": [
        "chat.a", "bad name", "stock_updates", "alerts", "ops", "user:bob", "all", "user:alice",
        "jobs", "chat.old", "chat.b", "chat.c",
    ], "since": {"chat.a": 5, "user:alice": 2}}))
    assert isinstance(effect, Subscribe)
    assert effect.frame_id == 42
    items = effect.items
    assert len(items) == 12
    assert items[0] == SubscribeItem("chat.a", 5, None)
    expected_errors = [
        (1, "invalid_channel", "bad name"),
        (2, "unknown_channel", "stock_updates"),  # no catch-all in this policy set
        (3, "forbidden", "alerts"),               # staff only
        (4, "forbidden", "ops"),
        (5, "forbidden", "user:bob"),             # someone else's user channel
    ]
    for index, code, channel in expected_errors:
        out = error_of(items[index])
        assert (out["code"], out["channel"], out["id"]) == (code, channel, 42)
    assert items[6] == SubscribeItem("all", None, None)          # implicit, not counted
    assert items[7] == SubscribeItem("user:alice", 2, None)      # implicit, not counted
    assert items[8] == SubscribeItem("jobs", None, None)
    assert items[9] == SubscribeItem("chat.old", None, None)     # already held: not counted again
    out = error_of(items[10])
    assert (out["code"], out["channel"]) == ("too_many_subscriptions", "chat.b")
    assert error_of(items[11])["code"] == "too_many_subscriptions"
    assert session.subscriptions == {"chat.old", "chat.a", "jobs"}
    assert "all" not in session.subscriptions and "user:alice" not in session.subscriptions


def test_staff_may_subscribe_alerts_and_other_users():
    session = make_session(principal=STAFF)
    effect = only(send(session, {"type": "subscribe", "channels": ["alerts", "user:bob"]}))
    assert effect.items == (SubscribeItem("alerts", None, None),
                            SubscribeItem("user:bob", None, None))


def test_implicit_channels_pass_even_where_policy_would_refuse():
    # "all" is implicit for everyone; with no catch-all it would otherwise be unknown
    session = make_session(policies=NO_CATCH_ALL, principal=ALICE, max_subscriptions=0)
    effect = only(send(session, {"type": "subscribe", "channels": ["all", "user:alice"]}))
    assert effect.items == (SubscribeItem("all", None, None),
                            SubscribeItem("user:alice", None, None))
    assert session.subscriptions == set()


def test_max_subscriptions_exact_boundary():
    session = make_session(principal=ALICE, max_subscriptions=2)
    first = only(send(session, {"type": "subscribe", "channels": ["a", "b"]}))
    assert all(isinstance(item, SubscribeItem) for item in first.items)
    third = only(send(session, {"type": "subscribe", "channel": "c"}))
    assert error_of(third.items[0])["code"] == "too_many_subscriptions"
    again = only(send(session, {"type": "subscribe", "channel": "a"}))
    assert again.items == (SubscribeItem("a", None, None),)
    session.forget("a")
    assert only(send(session, {"type": "subscribe", "channel": "c"})).items == \
        (SubscribeItem("c", None, None),)


def test_duplicate_channels_in_one_request_give_one_item():
    session = make_session(principal=ALICE)
    effect = only(send(session, {"type": "subscribe", "channels": ["a", "b", "a"]}))
    assert [item.channel for item in effect.items] == ["a", "b"]


@pytest.mark.parametrize("body, code", [
    ({"type": "subscribe"}, "invalid_message"),
    ({"type": "subscribe", "channels": []}, "invalid_message"),
    ({"type": "subscribe", "channels": [f"c{i}" for i in range(101)]}, "invalid_message"),
    ({"type": "subscribe", "channels": "jobs"}, "invalid_message"),
    ({"type": "subscribe", "channel": 3}, "invalid_message"),
    ({"type": "subscribe", "channel": "jobs", "since": -1}, "invalid_message"),
    ({"type": "subscribe", "channels": ["jobs"], "since": 3}, "invalid_message"),
    ({"type": "subscribe", "channel": "jobs", "epoch": 5}, "invalid_message"),
    ({"type": "subscribe", "channels": ["jobs", "nodes"], "epoch": "e1"}, "invalid_message"),
    ({"type": "subscribe", "channels": ["jobs"], "epoch": {"jobs": 1}}, "invalid_message"),
    ({"type": "subscribe", "channels": ["jobs"], "epoch": ["e"]}, "invalid_message"),
])
def test_malformed_subscribe_is_one_error(body, code):
    session = make_session(principal=ALICE)
    out = error_of(only(send(session, {**body, "id": "x"})))
    assert (out["code"], out["id"]) == (code, "x")
    assert session.subscriptions == set()


@pytest.mark.parametrize("body, expected", [
    ({"channel": "jobs", "since": 4, "epoch": "k2f8"}, [("jobs", 4, "k2f8")]),
    ({"channel": "jobs", "epoch": "k2f8"}, [("jobs", None, "k2f8")]),
    ({"channels": ["jobs"], "epoch": "k2f8"}, [("jobs", None, "k2f8")]),
    ({"channels": ["jobs", "nodes"], "since": {"jobs": 1, "nodes": 2},
      "epoch": {"jobs": "e1", "nodes": "e2"}}, [("jobs", 1, "e1"), ("nodes", 2, "e2")]),
    ({"channels": ["jobs", "nodes"], "epoch": {"nodes": "e2"}},
     [("jobs", None, None), ("nodes", None, "e2")]),
    ({"channels": ["jobs", "nodes"], "epoch": {}}, [("jobs", None, None), ("nodes", None, None)]),
    ({"channel": "jobs", "epoch": None}, [("jobs", None, None)]),
])
def test_since_and_epoch_reach_the_items(body, expected):
    session = make_session(principal=ALICE)
    effect = only(send(session, {"type": "subscribe", **body}))
    assert effect.items == tuple(SubscribeItem(*row) for row in expected)


# --- unsubscribe ------------------------------------------------------------------------------

@pytest.mark.parametrize("body, channels", [
    ({"channel": "jobs"}, ("jobs",)),
    ({"channels": ["jobs", "nodes", "jobs"]}, ("jobs", "nodes")),
    ({"channel": "never_subscribed"}, ("never_subscribed",)),
])
def test_unsubscribe(body, channels):
    session = make_session(principal=ALICE)
    assert only(send(session, {"type": "unsubscribe", "id": 2, **body})) == \
        Unsubscribe(channels, 2)


@pytest.mark.parametrize("body, code", [
    ({"channel": "bad name"}, "invalid_channel"),
    ({"channels": ["jobs", "a/b"]}, "invalid_channel"),
    ({}, "invalid_message"),
    ({"channels": []}, "invalid_message"),
    ({"channel": 1}, "invalid_message"),
])
def test_unsubscribe_errors(body, code):
    session = make_session(principal=ALICE)
    assert error_of(only(send(session, {"type": "unsubscribe", **body})))["code"] == code


def test_forget_drops_explicit_and_implicit():
    session = make_session(principal=ALICE)
    send(session, {"type": "subscribe", "channel": "jobs"})
    session.forget("jobs")
    session.forget("user:alice")
    session.forget("not-there")
    assert session.subscriptions == set()
    assert session.implicit == {"all"}


# --- publish ----------------------------------------------------------------------------------

@pytest.mark.parametrize("principal, body, expected", [
    (ALICE, {"channel": "chat.1", "data": {"t": 1}}, ("chat.1", "message", {"t": 1})),
    (ALICE, {"channel": "chat.1", "data": None, "event": "chat_message"},
     ("chat.1", "chat_message", None)),
    (STAFF, {"channel": "ops", "data": 1}, ("ops", "message", 1)),
    (ALICE, {"channel": "board", "data": "x"}, ("board", "message", "x")),
])
def test_publish_where_policy_allows(principal, body, expected):
    session = make_session(policies=NO_CATCH_ALL, principal=principal)
    assert only(send(session, {"type": "publish", "id": 8, **body})) == Publish(*expected, 8)


def test_publish_anyone_channel_with_auth_off():
    session = make_session(policies=NO_CATCH_ALL, require_auth=False)
    assert isinstance(only(send(session, {"type": "publish", "channel": "board", "data": 1})),
                      Publish)


@pytest.mark.parametrize("policies, principal, channel, code", [
    (DEFAULT_POLICIES, ALICE, "jobs", "forbidden"),
    (DEFAULT_POLICIES, ALICE, "stock_updates", "forbidden"),
    (DEFAULT_POLICIES, STAFF, "jobs", "forbidden"),       # nobody denies staff too
    (DEFAULT_POLICIES, ALICE, "user:alice", "forbidden"),  # implicit is for subscribe only
    (DEFAULT_POLICIES, ALICE, "all", "forbidden"),
    (NO_CATCH_ALL, ALICE, "ops", "forbidden"),
    (NO_CATCH_ALL, ALICE, "stock_updates", "unknown_channel"),
    (NO_CATCH_ALL, ALICE, "bad name", "invalid_channel"),
    (NO_CATCH_ALL, ALICE, "", "invalid_channel"),
    (NO_CATCH_ALL, ALICE, "c" * 101, "invalid_channel"),
])
def test_publish_refused(policies, principal, channel, code):
    session = make_session(policies=policies, principal=principal)
    out = error_of(only(send(session, {"type": "publish", "id": 6, "channel": channel,
                                        "data": 1})))
    assert (out["code"], out["channel"], out["id"]) == (code, channel, 6)


BROADCASTER = Principal("slurm-monitor", can_broadcast=True)


@pytest.mark.parametrize("channel", ["jobs", "all", "user:alice", "stock_updates"])
def test_broadcaster_publishes_where_the_policy_says_nobody(channel):
    """One rule for every road (hub.policies.may_publish): hub.broadcast speaks for the server."""
    session = make_session(principal=BROADCASTER)
    assert only(send(session, {"type": "publish", "channel": channel, "data": 1})) == \
        Publish(channel, "message", 1, None)


def test_broadcaster_still_gets_invalid_channel():
    session = make_session(principal=BROADCASTER)
    out = error_of(only(send(session, {"type": "publish", "channel": "bad name", "data": 1})))
    assert out["code"] == "invalid_channel"


@pytest.mark.parametrize("principal, channel, code", [
    (ALICE, "jobs", "forbidden"),
    (ALICE, "all", "forbidden"),
    (ANONYMOUS, "chat.x", "forbidden"),
    (ALICE, "chat.x", None),
    (STAFF, "ops", None),
    (ALICE, "nowhere", "unknown_channel"),
    (BROADCASTER, "nowhere", None),
    (ALICE, "no way", "invalid_channel"),
    (ALICE, 5, "invalid_channel"),
])
def test_check_publish_is_the_rule_for_handlers_too(principal, channel, code):
    policies = build_policies({"*": None, "jobs": {}, "all": {},
                               "chat.*": {"publish": "authenticated"},
                               "ops": {"subscribe": "staff", "publish": "staff"}}, 100)
    if code is None:
        assert s.check_publish(policies, principal, channel, True, 3) is None
        return
    with pytest.raises(p.ProtocolError) as raised:
        s.check_publish(policies, principal, channel, True, 3)
    assert (raised.value.code, raised.value.frame_id) == (code, 3)


@pytest.mark.parametrize("body", [
    {"data": 1},
    {"channel": "chat.1"},
    {"channel": "chat.1", "data": 1, "event": "published"},
    {"channel": "chat.1", "data": 1, "event": "bad event"},
])
def test_malformed_publish_is_invalid_message(body):
    session = make_session(policies=NO_CATCH_ALL, principal=ALICE)
    assert error_of(only(send(session, {"type": "publish", **body})))["code"] == \
        "invalid_message"


# --- rate limit -------------------------------------------------------------------------------

@pytest.mark.parametrize("limit", [1, 2, 5, 30])
def test_rate_limit_then_close(limit):
    session = make_session(principal=ALICE, limit=limit)
    for _ in range(limit):
        reply = only(send(session, {"type": "ping"}, now=T0))
        assert reply.error is None
    for _ in range(limit):
        out = error_of(only(send(session, {"type": "ping", "id": 1}, now=T0 + 1)))
        assert out["code"] == "rate_limited"
        assert out["id"] == 1  # the direct reply to the dropped frame echoes its id (§3)
    assert only(send(session, {"type": "ping"}, now=T0 + 2)) == Close(4029, "rate limit abuse")
    assert isinstance(only(send(session, {"type": "ping"}, now=T0 + 3)), Close)


@pytest.mark.parametrize("text, expected", [
    ('{"type": "ping", "id": 7}', 7),
    ('{"type": "ping", "id": "abc"}', "abc"),
    ('{"id": "first", "type": "subscribe", "channels": ["x"]}', "first"),
    ('{"type": "ping"}', None),
    ('{"type": "ping", "id": true}', None),          # not an id type §3 allows
    ('{"type": "ping", "id": {"nested": 1}}', None),
    ('{"type": "ping", "id": 1.5}', None),
    ('{"data": {"id": 9}, "type": "ping"}', None),   # nested, not top-level
    ('[{"id": 1}]', None),
    ('{"type": "ping", "id": 3', None),              # garbage: never raises
    ("", None), ("{", None), ('"id"', None), ("\ud800", None), (None, None),
])
def test_peek_frame_id_short_frames(text, expected):
    assert p.peek_frame_id(text) == expected


PAD = "x" * 5000  # long frames are scanned, not parsed


@pytest.mark.parametrize("text, expected", [
    ('{"type": "publish", "id": 12, "data": "' + PAD + '"}', 12),
    ('{ "id" : "k-1" , "data": "' + PAD + '"}', "k-1"),
    (r'{"\\u0069d": 4, "data": "' + PAD + '"}', None),  # the key is backslash-u0069d
    (r'{"\u0069d": 4, "data": "' + PAD + '"}', 4),   # an escaped key is still "id"
    ('{"data": {"id": 9, "x": "' + PAD + '"}, "id": 5}', None),  # top-level id past 4 KB
    (r'{"data": {"id": 9}, "s": "}{\"id\": 8", "id": 5, "pad": "' + PAD + '"}', 5),
    ('{"data": ["id", {"id": 2}], "id": "top", "pad": "' + PAD + '"}', "top"),
    ('{"type": "publish", "data": "' + PAD + '", "id": 3}', None),  # after the scanned part
    ('{"id": ' + "9" * 5000 + "}", None),            # cut off: not a number we can read
    ('{"id": "' + PAD + '"}', None),                 # cut off inside the string
    ("[" * 6000, None), ("{" * 6000, None), ('{"' + PAD, None), (" " * 6000, None),
])
def test_peek_frame_id_long_frames_scan_only_the_start(text, expected):
    assert len(text) >= p.PEEK_PARSE_BELOW
    assert p.peek_frame_id(text) == expected


def test_rate_limited_reply_echoes_the_id_of_a_long_frame_without_parsing_it():
    session = make_session(principal=ALICE, limit=2)
    send(session, {"type": "ping"})
    send(session, {"type": "ping"})
    big = json.dumps({"type": "publish", "id": "big-1", "channel": "x", "data": PAD * 100})
    out = error_of(only(session.receive(big, T0)))
    assert (out["code"], out["id"]) == ("rate_limited", "big-1")
    out = error_of(only(session.receive("{not json at all", T0)))
    assert out["code"] == "rate_limited" and "id" not in out


def test_rate_limit_counts_every_frame_even_garbage_and_pongs():
    session = make_session(principal=ALICE, limit=2)
    assert send(session, {"type": "pong"}) == []
    assert error_of(only(session.receive("garbage", T0)))["code"] == "invalid_json"
    assert error_of(only(send(session, {"type": "ping"})))["code"] == "rate_limited"


def test_rate_window_resets_after_sixty_seconds():
    session = make_session(principal=ALICE, limit=2)
    for _ in range(4):
        send(session, {"type": "ping"}, now=T0)
    # still the same window: the 5th frame is over twice the limit
    assert only(send(session, {"type": "ping"}, now=T0 + 59.999)) == Close(4029, "rate limit abuse")
    session = make_session(principal=ALICE, limit=2)
    for _ in range(4):
        send(session, {"type": "ping"}, now=T0)
    assert only(send(session, {"type": "ping"}, now=T0 + 60)).error is None
    assert only(send(session, {"type": "ping"}, now=T0 + 61)).error is None
    assert error_of(only(send(session, {"type": "ping"}, now=T0 + 62)))["code"] == "rate_limited"


@pytest.mark.parametrize("times, verdicts", [
    ([0, 0, 0, 0, 0], ["ok", "ok", "limited", "limited", "abuse"]),
    ([0, 0, 0, 0, 59.9], ["ok", "ok", "limited", "limited", "abuse"]),
    ([0, 0, 0, 0, 60], ["ok", "ok", "limited", "limited", "ok"]),
    ([0, 10, 20, 60, 70, 80], ["ok", "ok", "limited", "ok", "ok", "limited"]),
    ([0, 0, 0, 0, 0, 0, 60], ["ok", "ok", "limited", "limited", "abuse", "abuse", "ok"]),
])
def test_rate_window_table(times, verdicts):
    window = RateWindow(limit=2)
    assert [window.check(T0 + t) for t in times] == verdicts


def test_rate_window_fifth_frame_closes_before_being_parsed():
    session = make_session(principal=ALICE, limit=2)
    for _ in range(4):
        send(session, {"type": "ping"})
    assert send(session, "not even json") == [Close(p.CLOSE_RATE_LIMIT_ABUSE, "rate limit abuse")]


# --- effects are frozen values ----------------------------------------------------------------

def test_reply_error_is_none_for_plain_replies_and_set_for_errors():
    session = make_session(principal=ALICE)
    assert only(send(session, {"type": "ping"})).error is None
    assert only(send(session, {"type": "nope"})).error == "unknown_type"


@pytest.mark.parametrize("effect", [
    Reply("x"), Close(1000), SubscribeItem("a", None, None), Subscribe((), None),
    Unsubscribe(("a",), None), Publish("a", "message", 1, None), Authenticate("t", None),
    Dispatch(p.ClientFrame("x", None, {})),
])
def test_effects_are_frozen(effect):
    field = next(iter(effect.__dataclass_fields__))
    with pytest.raises(Exception):
        setattr(effect, field, None)


def test_error_reply_helper():
    reply = s.error_reply(p.ProtocolError("forbidden", "no", channel="c", frame_id=1))
    assert reply.error == "forbidden"
    assert json.loads(reply.text) == {"type": "error", "code": "forbidden", "message": "no",
                                      "channel": "c", "id": 1}


@pytest.mark.parametrize("body", [
    '{"type": "ping", "id": "\\ud800"}',
    '{"type": "subscribe", "channel": "\\udfff"}',
    '{"type": "unsubscribe", "channel": "a\\ud800"}',
])
def test_every_reply_is_utf8_encodable(body):
    session = make_session(principal=ALICE)
    for effect in session.receive(body, T0):
        replies = effect.items if isinstance(effect, Subscribe) else [effect]
        for reply in replies:
            if isinstance(reply, Reply):
                reply.text.encode("utf-8")


def test_the_per_socket_state_has_no_instance_dict():
    """One Session and RateWindow per socket: slotted (~0.3 KB less per idle connection)."""
    session = make_session()
    assert not hasattr(session, "__dict__") and not hasattr(session.rate, "__dict__")
    with pytest.raises(AttributeError):
        session.typo = 1  # type: ignore[attr-defined]
