"""Canary: the message the Redis publish script forges (``pubsub_message_lua``) is what the
installed channels_redis pub/sub layer decodes, on the group channel it listens to
(``pubsub_group_channel``). An upgrade of channels_redis that changes its wire form, its
serializer or its group naming fails here, instead of silently stopping delivery."""

from __future__ import annotations

import asyncio

import msgpack
from channels_redis.pubsub import RedisPubSubChannelLayer

from hub.engine.names import group_name
from hub.engine.redis import RedisHistory, pubsub_group_channel, pubsub_message_lua, redis_client


def settings_layer(url: str) -> RedisPubSubChannelLayer:
    """A layer configured as realtime_project/settings.py configures it with REDIS_URL."""
    from django.conf import settings

    config = {"hosts": [{"address": url, "health_check_interval": 10, "socket_keepalive": True,
                         "socket_connect_timeout": 2, "retry_on_timeout": True}],
              "prefix": f"{settings.HUB['CHANNEL_PREFIX']}.layer"}
    return RedisPubSubChannelLayer(**config)


def test_the_forged_form_is_plain_msgpack_of_the_message_dict():
    """What the layer's own serializer writes for a message is msgpack of the dict, no
    prefix or encryption: the form ``cmsgpack.pack`` produces in Redis."""
    layer = RedisPubSubChannelLayer(hosts=[{"address": "redis://127.0.0.1:1"}])
    message = {"type": "hub.fanout", "c": "jobs", "o": 3, "t": "text", "ts": 1.5, "e": "ab12"}
    assert layer.serialize(message) == msgpack.packb(message)
    assert layer.deserialize(msgpack.packb(message)) == message
    assert pubsub_message_lua({"o": "offset"}) == "cmsgpack.pack({o = offset})"


async def test_a_publication_round_trips_through_channels_redis_own_receive(redis_server):
    layer = settings_layer(redis_server.url)
    prefix = "t"
    inbox = await layer.new_channel(prefix=f"{prefix}.node.")
    group = group_name(prefix, "jobs:ünï")
    await layer.group_add(group, inbox)
    for _attempt in range(25):  # redis-py does not confirm SUBSCRIBE: wait until a marker
        await layer.group_send(group, {"type": "marker"})  # comes back through the group
        try:
            await asyncio.wait_for(layer.receive(inbox), 0.2)
            break
        except asyncio.TimeoutError:
            continue
    history = RedisHistory(redis_client(redis_server.url), prefix=prefix)
    offset, text, epoch = await history.append("jobs:ünï", 10, '{"o":', "}",
                                               deliver_to=pubsub_group_channel(layer, group))
    message = await asyncio.wait_for(layer.receive(inbox), 5)
    while message.get("type") == "marker":  # a late marker
        message = await asyncio.wait_for(layer.receive(inbox), 5)
    assert set(message) == {"type", "c", "o", "t", "ts", "e"}
    assert (message["type"], message["c"], message["o"], message["t"], message["e"]) == (
        "hub.fanout", "jobs:ünï", offset, text, epoch)
    assert isinstance(message["ts"], float)
    await layer.flush()
