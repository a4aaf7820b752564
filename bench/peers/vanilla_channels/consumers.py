"""The chat-tutorial pattern: ``group_add`` on subscribe, ``group_send`` on publish, and a
handler that JSON-encodes the event and sends it to its socket (once per subscriber)."""

import itertools
import json
from datetime import datetime, timezone

from channels.generic.websocket import AsyncWebsocketConsumer

_offsets = itertools.count(1)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BenchConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.groups_joined = set()
        await self.accept()
        await self.send(text_data=json.dumps({
            "type": "connected", "client_id": self.channel_name, "user": None,
            "server": "vanilla-channels", "heartbeat_interval": 0, "timestamp": now_iso()}))

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        msg = json.loads(text_data)
        t = msg.get("type")
        if t == "subscribe":
            channel = msg["channel"]
            await self.channel_layer.group_add(channel, self.channel_name)
            self.groups_joined.add(channel)
            await self.send(text_data=json.dumps(
                {"type": "subscribed", "channel": channel, "offset": 0, "epoch": "v"}))
        elif t == "publish":
            channel = msg["channel"]
            offset = next(_offsets)
            await self.channel_layer.group_send(channel, {
                "type": "channel.message",
                "message": {"type": msg.get("event", "message"), "channel": channel,
                            "offset": offset, "timestamp": now_iso(), "data": msg.get("data")},
            })
            reply = {"type": "published", "channel": channel, "offset": offset}
            if "id" in msg:
                reply["id"] = msg["id"]
            await self.send(text_data=json.dumps(reply))
        elif t == "ping":
            await self.send(text_data=json.dumps({"type": "pong", "timestamp": now_iso()}))

    async def channel_message(self, event):
        await self.send(text_data=json.dumps(event["message"]))
