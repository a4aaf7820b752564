"""Who may hold a socket in this process (PROTOCOL.md §2): separate caps, so sockets that
have not authenticated can never keep authenticated users out.

- Authenticated sockets count against ``HUB_MAX_CONNECTIONS`` (and, in the consumer,
  ``HUB_MAX_CONNECTIONS_PER_USER``); anonymous ones never do.
- Anonymous sockets (still waiting to authenticate, or admitted with ``HUB_REQUIRE_AUTH``
  off) count against ``HUB_MAX_ANONYMOUS_CONNECTIONS`` and, per client address (the
  socket's peer as ASGI's ``scope["client"]`` gives it; behind a proxy run daphne with
  ``--proxy-headers`` so that is the real client), ``HUB_MAX_CONNECTIONS_PER_ADDRESS``.
- A socket that authenticates moves from the anonymous count to the authenticated one.
So this process holds at most MAX_CONNECTIONS + MAX_ANONYMOUS_CONNECTIONS sockets.

Pure: standard library only; the consumer passes the limits (read lazily from settings).
"""

from __future__ import annotations

import weakref
from typing import Any

ANONYMOUS, AUTHENTICATED = "anonymous", "authenticated"


class Admission:
    """This process's counts. One per node (``admission_for``)."""

    def __init__(self) -> None:
        self.authenticated = 0
        self.anonymous = 0
        self.by_address: dict[str, int] = {}


class Gate:
    """One socket's place in the counts: ``held`` is None, ANONYMOUS or AUTHENTICATED.
    Every ``enter_*`` that returns True is undone by ``release`` (the consumer's cleanup)."""

    __slots__ = ("counts", "address", "held")

    def __init__(self, counts: Admission, address: str) -> None:
        self.counts, self.address = counts, address
        self.held: str | None = None

    def enter_anonymous(self, max_anonymous: int, max_per_address: int) -> str | None:
        """Take an anonymous place; returns why not (a close reason) or None."""
        counts = self.counts
        if self.held is not None:
            return None
        if counts.anonymous >= max_anonymous:
            return "server at its limit for unauthenticated sockets"
        if counts.by_address.get(self.address, 0) >= max_per_address:
            return "too many unauthenticated sockets from this address"
        counts.anonymous += 1
        counts.by_address[self.address] = counts.by_address.get(self.address, 0) + 1
        self.held = ANONYMOUS
        return None

    def enter_authenticated(self, max_connections: int) -> bool:
        """Take an authenticated place, giving back the anonymous one if held."""
        if self.held == AUTHENTICATED:
            return True
        if self.counts.authenticated >= max_connections:
            return False
        self.release()
        self.counts.authenticated += 1
        self.held = AUTHENTICATED
        return True

    def release(self) -> None:
        counts, held = self.counts, self.held
        self.held = None
        if held == AUTHENTICATED:
            counts.authenticated -= 1
        elif held == ANONYMOUS:
            counts.anonymous -= 1
            left = counts.by_address.get(self.address, 1) - 1
            if left > 0:
                counts.by_address[self.address] = left
            else:
                counts.by_address.pop(self.address, None)


_admissions: "weakref.WeakKeyDictionary[Any, Admission]" = weakref.WeakKeyDictionary()


def admission_for(node: Any) -> Admission:
    """The counts of ``node``'s process (a new node, e.g. in tests, starts from zero)."""
    counts = _admissions.get(node)
    if counts is None:
        counts = _admissions[node] = Admission()
    return counts


def client_address(scope: dict[str, Any]) -> str:
    """The peer address from ``scope["client"]`` ([host, port]); "" when unknown (then all
    such sockets share one per-address count, which errs on the safe side)."""
    client = scope.get("client")
    if client and isinstance(client[0], str):
        return client[0]
    return ""


# What an admitted socket's scope keeps: read later by admission (``client``) and by the
# connection listing (``hub.engine.node._metadata``: ``client``, ``path``, ``user_agent``).
_KEPT = ("type", "path", "client")


def admitted_scope(scope: dict) -> dict:
    """The scope once the handshake is read: a new small dict, so the server's (its headers
    with cookies and ``Authorization``, the query string with a ``?token=``, raw path,
    subprotocols: ~1 KB per idle socket) is not kept alive by the socket. The credential
    re-checks need none of it (they use the ``Credential``, hub.socket.credentials)."""
    kept = {key: scope[key] for key in _KEPT if key in scope}
    agent = next((value for name, value in scope.get("headers", ()) if name == b"user-agent"), None)
    if agent is not None:
        kept["user_agent"] = agent.decode("latin-1")
    return kept
