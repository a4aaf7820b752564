"""hub.socket.handlers.dispatch without a socket: a fake consumer records what it would send."""

from __future__ import annotations

import asyncio

from hub.socket import protocol as p
from hub.socket.handlers import dispatch


class FakeConsumer:
    def __init__(self) -> None:
        self.errors: list[p.ProtocolError] = []

    def write_error(self, exc: p.ProtocolError) -> None:
        self.errors.append(exc)

    def write_text(self, text: str) -> None:
        raise AssertionError(f"no reply expected, got {text}")


def test_dispatching_an_unregistered_type_answers_unknown_type():
    """The session never dispatches an unregistered type; if it did, the client gets the
    same answer the session gives (``unknown_type``), not an internal error."""
    conn = FakeConsumer()
    asyncio.run(dispatch(conn, p.ClientFrame("never_registered", 9, {"type": "never_registered"})))
    assert [(e.code, e.frame_id) for e in conn.errors] == [(p.UNKNOWN_TYPE, 9)]
