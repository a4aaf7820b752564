"""Application message types: ``@register("chat_message")`` adds a client frame type.

A handler is ``async def handler(ctx: HandlerContext, frame: dict) -> None``; it replies with
``ctx.reply({...})`` (the frame's ``id`` is echoed) and publishes with ``hub.publish``. A
handler that raises answers ``internal_error``; the socket stays open. Built-in and control
types cannot be registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from hub import protocol as p
from hub.policies import Principal


@dataclass(frozen=True)
class HandlerContext:
    client_id: str
    principal: Principal
    subscriptions: frozenset[str]
    frame_id: Any
    reply: Callable[[dict[str, Any]], None]


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
