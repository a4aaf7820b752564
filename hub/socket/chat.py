"""The example application type: ``chat_message`` puts a line of chat on a channel, as in
the trading platform's example. Opt-in: ``HUB_HANDLER_MODULES=hub.socket.chat``.

The sender must be subscribed to the channel, and the channel's ``publish`` policy must let
it publish there (``ctx.publish`` applies the one publish rule; PROTOCOL.md §4), e.g.
``HUB_CHANNELS='{"chat.*": {"subscribe": "authenticated", "publish": "authenticated"}}'``.

    -> {"type": "chat_message", "channel": "chat.lobby", "message": "hi", "id": 3}
    <- {"type": "chat_message_sent", "channel": "chat.lobby", "offset": 12, "id": 3}
    subscribers get {"type": "chat_message", "channel": "chat.lobby", "offset": 12,
                     "data": {"user": "alice", "client_id": "c_..", "message": "hi"}, ...}
"""

from __future__ import annotations

from hub.socket import protocol as p
from hub.socket.handlers import HandlerContext, register

MAX_CHAT_LENGTH = 4000


@register("chat_message")
async def handle_chat_message(ctx: HandlerContext, frame: dict) -> None:
    channel, message = frame.get("channel"), frame.get("message")
    if not isinstance(channel, str) or not isinstance(message, str) or not message:
        raise p.ProtocolError(p.INVALID_MESSAGE, "chat_message needs channel and message strings",
                              frame_id=ctx.frame_id)
    if len(message) > MAX_CHAT_LENGTH:
        raise p.ProtocolError(p.INVALID_MESSAGE, f"message longer than {MAX_CHAT_LENGTH}",
                              channel=channel, frame_id=ctx.frame_id)
    if channel not in ctx.subscriptions:
        raise p.ProtocolError(p.FORBIDDEN, "subscribe to the channel before chatting on it",
                              channel=channel, frame_id=ctx.frame_id)
    offset = await ctx.publish(channel, "chat_message", {
        "user": ctx.principal.username, "client_id": ctx.client_id, "message": message})
    ctx.reply({"type": "chat_message_sent", "channel": channel, "offset": offset})
