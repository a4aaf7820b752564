"""The Redis backend's Lua scripts (``hub.engine.redis`` runs them): the atomic publish of a
list of publications and the history read, plus THE one function that knows channels_redis'
pub/sub message form (``pubsub_message_lua``, pinned by tests/hub/test_engine_redis_format.py).
Text only: no Redis client here."""

from __future__ import annotations

# A channel without a meta hash has top 0 and the epoch its first publication in the same TTL
# window will get: sha1(salt, TTL, window, channel), from Redis' own clock. Reading it
# writes nothing per channel (subscribing to made-up names costs no keys), and two lives of
# one channel never share an epoch: the second begins at least a TTL after the first did, so
# in a later window. The salt (one key, TTL refreshed at every use) is lost with Redis'
# data, so epochs after a data loss are new too.
_EPOCH_LUA = """
local function derive_epoch(salt_key, new_salt, ttl, channel)
  local salt = redis.call('GET', salt_key)
  if not salt then
    salt = new_salt
    redis.call('SET', salt_key, salt)
  end
  redis.call('PEXPIRE', salt_key, ttl)
  local now = redis.call('TIME')
  local window = math.floor((tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)) / ttl)
  return string.sub(redis.sha1hex(salt .. ':' .. ttl .. ':' .. window .. ':' .. channel), 1, 8)
end
"""


def pubsub_message_lua(fields: dict[str, str]) -> str:
    """A Lua expression for a message in channels_redis' pub/sub wire form, ``fields`` being
    Lua expressions by key. THE one place that knows the form: the layer's msgpack
    serializer (no random prefix, no encryption: the hub's CHANNEL_LAYERS sets neither), so
    Redis' built-in cmsgpack writes what ``RedisPubSubChannelLayer.receive`` decodes. Pinned
    by tests/hub/test_engine_redis_format.py against the installed channels_redis: an
    upgrade that changes the form fails there, not silently in production."""
    body = ", ".join(f"{key} = {value}" for key, value in fields.items())
    return f"cmsgpack.pack({{{body}}})"




# One script for any number of publications (a single one is a list of one): the offsets of a
# channel follow the list, each publication is appended and PUBLISHed in the same atomic step
# as its offset. KEYS: salt, publication id, then per distinct channel its stream and meta.
# ARGV: TTL ms, new salt, timestamp, channel count, then per channel its name, group channel
# ('' = deliver nowhere) and maxlen, then the publications: msgpack of [heads, items], items
# flat (channel index, head index, tail) per publication (one argument instead of three per
# publication: redis-py's per-argument encoding cost more than the script).
# A stream left from an expired life of the channel goes when the new life begins: its
# offsets belong to the old epoch (and XADD needs new ids). Returns {first offset of this
# call per channel, epoch per channel}; the publication id keeps the first offsets (so a
# retry of a call that did run returns them instead of publishing twice).
PUBLISH_LUA = _EPOCH_LUA + """
local ttl = tonumber(ARGV[1])
local count = tonumber(ARGV[4])
local firsts, epochs = {}, {}
local done = redis.call('GET', KEYS[2])
if done then
  for first in string.gmatch(done, '%%d+') do firsts[#firsts + 1] = tonumber(first) end
  for c = 1, count do epochs[c] = redis.call('HGET', KEYS[2 + 2 * c], 'e') or '' end
  return {firsts, epochs}
end
for c = 1, count do
  local meta = KEYS[2 + 2 * c]
  local epoch = redis.call('HGET', meta, 'e')
  if not epoch then
    redis.call('DEL', KEYS[1 + 2 * c])
    epoch = derive_epoch(KEYS[1], ARGV[2], ttl, ARGV[2 + 3 * c])
    redis.call('HSET', meta, 'e', epoch)
  end
  epochs[c] = epoch
end
local ts = tonumber(ARGV[3])
local list = cmsgpack.unpack(ARGV[5 + 3 * count])
local heads, items = list[1], list[2]
for at = 3, #items, 3 do
  local c = items[at - 2]
  local offset = redis.call('HINCRBY', KEYS[2 + 2 * c], 'o', 1)
  if not firsts[c] then firsts[c] = offset end
  local text = heads[items[at - 1]] .. offset .. items[at]
  local maxlen = tonumber(ARGV[4 + 3 * c])
  if maxlen > 0 then
    redis.call('XADD', KEYS[1 + 2 * c], 'MAXLEN', maxlen, offset .. '-0', 't', text)
  end
  local group = ARGV[3 + 3 * c]
  if group ~= '' then
    local channel, epoch = ARGV[2 + 3 * c], epochs[c]
    redis.call('PUBLISH', group, %(message)s)
  end
end
for c = 1, count do
  redis.call('PEXPIRE', KEYS[2 + 2 * c], ttl)
  if tonumber(ARGV[4 + 3 * c]) > 0 then redis.call('PEXPIRE', KEYS[1 + 2 * c], ttl) end
  firsts[c] = firsts[c] or 0
end
redis.call('SET', KEYS[2], table.concat(firsts, ','), 'PX', math.min(ttl, 60000))
return {firsts, epochs}
""" % {"message": pubsub_message_lua({
    "type": "'hub.fanout'", "c": "channel", "o": "offset", "t": "text", "ts": "ts",
    "e": "epoch"})}

# KEYS: meta, stream, salt. ARGV: new salt, TTL ms, channel, since (-1: the top only). One
# script, so the offsets read belong to the epoch returned even if the channel expires
# meanwhile.
SINCE_LUA = _EPOCH_LUA + """
local meta = redis.call('HMGET', KEYS[1], 'o', 'e')
if not meta[2] then
  return {0, derive_epoch(KEYS[3], ARGV[1], tonumber(ARGV[2]), ARGV[3])}
end
local top = tonumber(meta[1] or '0')
local since = tonumber(ARGV[4])
if since < 0 or since >= top then
  return {top, meta[2]}
end
return {top, meta[2], redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+')}
"""
