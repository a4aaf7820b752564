"""Application message types: ``@register("chat_message")`` adds a client frame type.

A handler is ``async def handler(ctx: HandlerContext, frame: dict) -> None``; it replies with
``ctx.reply({...})`` (the frame's ``id`` is echoed) and puts client data on a channel only
with ``await ctx.publish(channel, event, data)``, which applies the same rule as the
``publish`` frame (PROTOCOL.md §4: the channel's ``publish`` policy, or ``hub.broadcast``)
and raises ``ProtocolError`` (``invalid_channel``, ``unknown_channel``, ``forbidden``) the
consumer answers with. A handler must never call ``hub.publish`` with client data: that is
the server's own road and checks no policy. A handler that raises anything else answers
``internal_error``; the socket stays open. Built-in and control types cannot be registered.

Handlers are opt-in: modules listed in ``HUB_HANDLER_MODULES`` (e.g. ``hub.socket.chat``) are
imported at start-up and register theirs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from hub.socket import protocol as p
from hub.engine.errors import PublishError
from hub.policies import PolicySet, Principal
from hub.socket.session import check_publish

logger = logging.getLogger("hub.consumer")


@dataclass(frozen=True)
class HandlerContext:
    client_id: str
    principal: Principal
    subscriptions: frozenset[str]
    frame_id: Any
    reply: Callable[[dict[str, Any]], None]
    policies: PolicySet
    require_auth: bool
    publisher: Callable[[str, str, Any], Awaitable[int]]  # the engine's publish

    async def publish(self, channel: str, event: str, data: Any) -> int:
        """Publish for this client, if the channel's policy lets it; returns the offset."""
        check_publish(self.policies, self.principal, channel, self.require_auth, self.frame_id)
        return await self.publisher(channel, event, data)


Handler = Callable[[HandlerContext, dict[str, Any]], Awaitable[None]]
_handlers: dict[str, Handler] = {}


def register(message_type: str) -> Callable[[Handler], Handler]:
    if message_type in p.BUILTIN_CLIENT_TYPES or message_type in p.CONTROL_TYPES:
        raise ValueError(f"{message_type!r} is a built-in type")

    def decorator(handler: Handler) -> Handler:
        _handlers[message_type] = handler
        return handler

    return decorator


def get_handler(message_type: str) -> Handler | None:
    return _handlers.get(message_type)


def is_registered(message_type: str) -> bool:
    return message_type in _handlers


async def dispatch(conn, frame: p.ClientFrame) -> None:
    """Run ``frame``'s registered handler for the consumer ``conn`` (it has ``session``,
    ``client_id``, ``node``, ``write_text``, ``write_error``); every failure becomes an error
    frame echoing the frame's ``id``, never a close."""
    handler = get_handler(frame.type)

    def reply(body: dict) -> None:
        if frame.id is not None:
            body = dict(body, id=frame.id)
        conn.write_text(p.encode(body))

    if handler is None:  # the session only dispatches registered types; answer as it would
        conn.write_error(p.ProtocolError(p.UNKNOWN_TYPE, f"unknown message type {frame.type!r}",
                                         frame_id=frame.id))
        return
    session = conn.session
    ctx = HandlerContext(client_id=conn.client_id, principal=session.principal,
                         subscriptions=frozenset(session.subscriptions | session.implicit),
                         frame_id=frame.id, reply=reply, policies=session.policies,
                         require_auth=session.require_auth, publisher=conn.node.publish)
    try:
        await handler(ctx, frame.body)
    except p.ProtocolError as exc:
        if exc.frame_id is None:
            exc.frame_id = frame.id
        conn.write_error(exc)
    except PublishError as exc:
        conn.write_error(p.ProtocolError(exc.code, exc.message, frame_id=frame.id))
    except Exception:
        logger.exception("handler for %r failed", frame.type)
        conn.write_error(p.ProtocolError(p.INTERNAL_ERROR, f"the {frame.type} handler failed",
                                         frame_id=frame.id))
