"""Loaded by daphne in tests through HUB_HANDLER_MODULES: a handler that always fails."""

from hub.socket.handlers import register


@register("explode")
async def explode(ctx, frame):
    raise RuntimeError("this handler always fails")
