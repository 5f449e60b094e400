// The Lua scripts bunchat runs in Redis. Each is atomic: Redis runs nothing else meanwhile,
// so "check, then write" inside one of them cannot race with another node.

/**
 * Store and publish one message. KEYS: seq, log, epoch. ARGV: the epoch the node knows, the
 * frame before and after its id, MAXLEN (0 = unlimited), then the channels to publish to.
 * Refuses with EPOCH when Redis lost its data since (the node re-reads the epoch, retries).
 * A conversation's counter starts at the epoch's floor, so ids never repeat across a loss.
 */
export const PUBLISH = `
if redis.call('HGET', KEYS[3], 'id') ~= ARGV[1] then return redis.error_reply('EPOCH the history epoch changed') end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], redis.call('HGET', KEYS[3], 'floor') or '0')
end
local id = redis.call('INCR', KEYS[1])
local frame = ARGV[2] .. id .. ARGV[3]
if tonumber(ARGV[4]) > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], id .. '-0', 'f', frame)
else
  redis.call('XADD', KEYS[2], id .. '-0', 'f', frame)
end
for i = 5, #ARGV do
  redis.call('PUBLISH', ARGV[i], id .. '\\n' .. frame)
end
return id
`;

/**
 * The current epoch, created when missing. KEYS: epoch. ARGV: a fresh epoch id, the highest
 * id this node has seen, the epoch it knew ('' at start). A node that knew another epoch
 * saw its history lost: the floor rises to what it saw, so ids continue above it.
 */
export const ENSURE_EPOCH = `
local id = redis.call('HGET', KEYS[1], 'id')
if not id then
  redis.call('HSET', KEYS[1], 'id', ARGV[1], 'floor', ARGV[2])
  return {ARGV[1], ARGV[2]}
end
local floor = tonumber(redis.call('HGET', KEYS[1], 'floor') or '0')
if ARGV[3] ~= '' and ARGV[3] ~= id and tonumber(ARGV[2]) > floor then
  floor = tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'floor', ARGV[2])
end
return {id, tostring(floor)}
`;

/** Take a name. KEYS: names, this node's names. ARGV: key, node, display name. 1 or 0. */
export const CLAIM = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then
  local owner = string.match(current, '^([^\\31]*)')
  if owner ~= ARGV[2] and redis.call('EXISTS', 'bc:node:' .. owner .. ':alive') == 1 then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\31' .. ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`;

/** Give a name back if this node holds it. KEYS: names, this node's names. ARGV: key, node. */
export const RELEASE = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current and string.match(current, '^([^\\31]*)') == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
`;

/** Who holds a name, if their node is alive. KEYS: names. ARGV: key. The value, or nil. */
export const LOOKUP = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return nil end
local owner = string.match(current, '^([^\\31]*)')
if redis.call('EXISTS', 'bc:node:' .. owner .. ':alive') == 0 then return nil end
return current
`;

/**
 * Remove a dead node's people: only what that node recorded as its own (its names and
 * memberships sets), never a scan over everyone. ARGV: node. Returns {room, name, ...}
 * of the memberships removed, for the presence frames.
 */
export const BURY = `
if redis.call('EXISTS', 'bc:node:' .. ARGV[1] .. ':alive') == 1 then return {} end
local gone = {}
local membersKey = 'bc:node:' .. ARGV[1] .. ':members'
for _, entry in ipairs(redis.call('SMEMBERS', membersKey)) do
  local sep = string.find(entry, '\\31', 1, true)
  local room = string.sub(entry, 1, sep - 1)
  local key = string.sub(entry, sep + 1)
  local value = redis.call('HGET', 'bc:members:' .. room, key)
  if value and string.match(value, '^([^\\31]*)') == ARGV[1] then
    redis.call('HDEL', 'bc:members:' .. room, key)
    table.insert(gone, room)
    table.insert(gone, string.match(value, '\\31(.*)$'))
  end
end
redis.call('DEL', membersKey)
local namesKey = 'bc:node:' .. ARGV[1] .. ':names'
for _, key in ipairs(redis.call('SMEMBERS', namesKey)) do
  local value = redis.call('HGET', 'bc:names', key)
  if value and string.match(value, '^([^\\31]*)') == ARGV[1] then redis.call('HDEL', 'bc:names', key) end
end
redis.call('DEL', namesKey)
redis.call('SREM', 'bc:nodes', ARGV[1])
return gone
`;
