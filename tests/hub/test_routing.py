"""``hub.routing``: the routes of PROTOCOL.md §1, matched as Channels' URLRouter did, with the
scope handed on as is (no per-socket copy), and routers that keep no frame per socket."""

from __future__ import annotations

import asyncio

import pytest

from hub.routing import HubRouter, ProtocolRouter


class Recorder:
    """Stands in for ``HubConsumer``: records what the router built it with."""

    seen: list = []

    def __init__(self, scope, receive, send, requested) -> None:
        self.args = (scope, requested)

    async def run(self) -> None:
        Recorder.seen.append(self.args)


def route(path: str, root_path: str = ""):
    Recorder.seen = []
    scope = {"type": "websocket", "path": path, "root_path": root_path}
    asyncio.run(HubRouter(Recorder)(scope, None, None))
    (got_scope, requested), = Recorder.seen
    assert got_scope is scope and "url_route" not in scope  # handed on, not copied
    return requested


@pytest.mark.parametrize("path", ["/ws/", "/ws", "/", "", "//ws/"])
def test_the_plain_routes_request_no_client_id(path):
    assert route(path) is None


@pytest.mark.parametrize("path", ["/ws/c_abc", "/ws/c_abc/"])
def test_a_client_id_in_the_path_is_handed_to_the_consumer(path):
    assert route(path) == "c_abc"


def test_root_path_is_stripped_and_required():
    assert route("/hub/ws/c_1", root_path="/hub") == "c_1"
    with pytest.raises(ValueError, match="No route"):
        route("/ws/", root_path="/hub")


@pytest.mark.parametrize("path", ["/ws/a/b", "/other", "/wss", "/ws//", "/ws/\n/x"])
def test_anything_else_has_no_route(path):
    with pytest.raises(ValueError, match="No route"):
        route(path)


def test_the_routers_hand_back_the_next_coroutine_and_keep_no_frame():
    """An awaiting router keeps its coroutine frame alive for the socket's life (~0.3 KB per
    idle connection): these return the consumer's ``run()`` coroutine itself, yet servers
    that inspect (uvicorn) still see ASGI 3 applications."""
    scope = {"type": "websocket", "path": "/ws/c_1"}
    router = ProtocolRouter({"websocket": HubRouter(Recorder)})
    coroutine = router(scope, None, None)
    try:
        assert coroutine.cr_code is Recorder.run.__code__
    finally:
        coroutine.close()
    for app in (router, HubRouter(Recorder)):  # as uvicorn tells ASGI 3 from 2
        assert asyncio.iscoroutinefunction(app.__call__)


def test_an_unknown_scope_type_fails_when_awaited():
    with pytest.raises(ValueError, match="lifespan"):
        asyncio.run(ProtocolRouter({"http": None})({"type": "lifespan"}, None, None))
