"""The lean ASGI route of ``POST /api/broadcast`` (hub.rest.broadcast_route) in process: what it
serves itself (with the real in-memory engine) and what it hands to Django unchanged. The
same route through a real daphne: tests/security/test_rest_broadcast_fastpath.py."""

from __future__ import annotations

import json

import pytest

from hub.ops import audit
from hub.rest import broadcasting, rest_auth
from hub.rest.broadcast_route import BroadcastRoute
from hub.engine.node import reset_node
from hub.rest.parsers import deeper_than, nesting_depth
from hub.policies import Principal

KEY = "k" * 40


@pytest.fixture(autouse=True)
def _fresh(settings, monkeypatch):
    # These tests read the audit queue itself: no writer thread may drain it meanwhile (the
    # route starts one on its first request, which would then outlive the test in this process).
    monkeypatch.setattr(audit, "start_writer", lambda: None)
    settings.ALLOWED_HOSTS = ["testserver"]
    rest_auth.IDENTITIES.clear()
    rest_auth.IDENTITIES.put("token", KEY, rest_auth.Identity(
        1, Principal("svc", is_staff=False, can_broadcast=True)))
    broadcasting.reset_rates()
    audit.discard()
    reset_node()
    yield
    rest_auth.IDENTITIES.clear()
    audit.discard()
    reset_node()


async def call(body: bytes) -> tuple[int | None, object, list[bytes]]:
    """(status, answer, bodies Django received): status None when the route handed over."""
    handed: list[bytes] = []

    async def django(scope, receive, send):
        handed.append((await receive())["body"])

    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/broadcast",
             "headers": [(b"host", b"testserver"), (b"authorization", f"Token {KEY}".encode()),
                         (b"content-type", b"application/json")]}
    await BroadcastRoute(django)(scope, receive, send)
    if handed:
        return None, None, handed
    return sent[0]["status"], json.loads(sent[1]["body"]), handed


def item(n: int, data=None) -> dict:
    return {"channel": "jobs", "message": {"type": "tick", "data": {"n": n} if data is None else data}}


async def test_one_object_and_a_list_are_served_in_order_and_audited():
    status, answer, _ = await call(json.dumps(item(0)).encode())
    assert status == 200 and answer == {"success": True, "channel": "jobs", "offset": 1}
    body = [item(n) for n in range(1, 6)] + [{"user": "alice", "message": {"type": "note", "data": "é"}}]
    status, answer, _ = await call(json.dumps(body, ensure_ascii=False).encode())
    assert status == 200 and [a["offset"] for a in answer] == [2, 3, 4, 5, 6, 1]
    assert answer[5]["channel"] == "user:alice"
    assert audit.pending() == 7
    sizes = [row[4] for row in list(audit._rows)]
    assert sizes[-1] == len('{"type":"note","data":"é"}'.encode())
    assert sizes[0] == len('{"type":"tick","data":{"n":0}}')


@pytest.mark.parametrize("data", ["plain", "é ü 漢", "line\nbreak\x01", "back\\u0041slash", 1e16,
                                  {"nested": ["é", None, True, 2.5]}])
async def test_the_size_audited_is_the_compact_utf8_message(data):
    """The route encodes each message once (ASCII, for the frame) and derives the audited
    size from it: the same figure as encoding the message as compact UTF-8 JSON."""
    status, _answer, _ = await call(json.dumps(item(0, data)).encode())
    assert status == 200
    expected = json.dumps({"type": "tick", "data": data}, separators=(",", ":"), ensure_ascii=False)
    assert list(audit._rows)[-1][4] == len(expected.encode())


def nested(depth: int):
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


async def test_a_body_nested_too_deep_is_handed_to_django_unchanged():
    """Depth 64 in all (the list, the item, the message, the data) is served; 65 goes to
    the DRF view, which answers the 400 (hub.rest.parsers)."""
    served = json.dumps([item(0, nested(61))]).encode()
    assert nesting_depth(served.decode()) == 64
    status, _answer, handed = await call(served)
    assert status == 200 and handed == []
    deep = json.dumps([item(0, nested(62))]).encode()
    status, _answer, handed = await call(deep)
    assert status is None and handed == [deep]


def test_deeper_than_agrees_with_nesting_depth():
    texts = [json.dumps(nested(d)) for d in range(0, 140, 7)]
    texts += ['["[[[[{{", {"a\\"[": [[]]}]', "[]", "{}", "1", '"[[["', '[{"k": "\\\\"}, [[[]]]]']
    for text in texts:
        for limit in (0, 1, 3, 64):
            assert deeper_than(text, limit) == (nesting_depth(text) > limit), (text[:40], limit)
    assert deeper_than("[}", 64) and deeper_than("[[", 64)  # not JSON: the full parser's to answer
