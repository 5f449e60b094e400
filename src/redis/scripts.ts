// The Lua scripts bunchat runs in Redis. Each is atomic: Redis runs nothing else meanwhile,
// so "check, then write" inside one of them cannot race with another node. Key names are
// those of keys.ts ("bc:…"); per-person and per-node keys are built inside the scripts.

/**
 * A conversation's next id, never at or below the epoch's floor: a node that learns late
 * that Redis lost its data raises the floor, and counters already counting in the new
 * epoch jump above it from their next id on.
 */
const NEXT_ID = `
local function nextId(seqKey, epochKey)
  local floor = tonumber(redis.call('HGET', epochKey, 'floor') or '0')
  local id = redis.call('INCR', seqKey)
  if id <= floor then
    id = floor + 1
    redis.call('SET', seqKey, id)
  end
  return id
end
local function append(logKey, id, frame, maxlen)
  if maxlen > 0 then
    redis.call('XADD', logKey, 'MAXLEN', '~', maxlen, id .. '-0', 'f', frame)
  else
    redis.call('XADD', logKey, id .. '-0', 'f', frame)
  end
end
`;

/**
 * Store and publish one room message. KEYS: seq, log, epoch. ARGV: the epoch the node
 * knows, the frame before and after its id, MAXLEN (0 = unlimited), the room's channel.
 * Refuses with EPOCH when Redis lost its data since (the node re-reads the epoch, retries).
 */
export const PUBLISH_ROOM = `${NEXT_ID}
if redis.call('HGET', KEYS[3], 'id') ~= ARGV[1] then return redis.error_reply('EPOCH the history epoch changed') end
local id = nextId(KEYS[1], KEYS[3])
local frame = ARGV[2] .. id .. ARGV[3]
append(KEYS[2], id, frame, tonumber(ARGV[4]))
redis.call('PUBLISH', ARGV[5], id .. '\\n' .. frame)
return id
`;

/**
 * Store one private message in the two people's conversation, append it to the
 * recipient's inbox and (when it is someone else) the sender's, and publish each inbox's
 * copy with its position there — to the channel of every node where that person has a
 * connection (bc:conns:<id>, kept by CLAIM / DETACH / BURY), as "box\ntopic\nframe". KEYS: conversation seq, log, epoch,
 * recipient inbox seq, log, [sender inbox seq, log]. ARGV: epoch, conversation frame
 * before / after the id, MAXLEN, inbox frame before the id / between id and box / after
 * the box, recipient id, sender id, queue cap (0: not queued), recipient's delivered mark.
 * Refuses with INBOX_FULL when a queued message finds the recipient's inbox full.
 */
export const PUBLISH_PRIVATE = `${NEXT_ID}
if redis.call('HGET', KEYS[3], 'id') ~= ARGV[1] then return redis.error_reply('EPOCH the history epoch changed') end
local cap = tonumber(ARGV[10])
if cap > 0 then
  local head = tonumber(redis.call('GET', KEYS[4]) or redis.call('HGET', KEYS[3], 'floor') or '0')
  if head - tonumber(ARGV[11]) >= cap then return redis.error_reply('INBOX_FULL the recipient is away with a full inbox') end
end
local maxlen = tonumber(ARGV[4])
local id = nextId(KEYS[1], KEYS[3])
append(KEYS[2], id, ARGV[2] .. id .. ARGV[3], maxlen)
local owners = {ARGV[8], ARGV[9]}
for i = 0, (#KEYS - 3) / 2 - 1 do
  local box = nextId(KEYS[4 + 2 * i], KEYS[3])
  local frame = ARGV[5] .. id .. ARGV[6] .. box .. ARGV[7]
  append(KEYS[5 + 2 * i], box, frame, maxlen)
  local owner = owners[i + 1]
  local payload = box .. '\\n' .. 'u:' .. owner .. '\\n' .. frame
  for _, node in ipairs(redis.call('HKEYS', 'bc:conns:' .. owner)) do
    redis.call('PUBLISH', 'bc:n:' .. node, payload)
  end
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

/** How many connections a person has, on every node (bc:conns:<id> is node → count). */
const PEOPLE = `
local function connections(id)
  local total = 0
  for _, n in ipairs(redis.call('HVALS', 'bc:conns:' .. id)) do total = total + tonumber(n) end
  return total
end
local function isHeld(id, now, grace)
  if redis.call('EXISTS', 'bc:conns:' .. id) == 1 then return true end
  return now - tonumber(redis.call('HGET', 'bc:id:' .. id, 'seen') or '0') < grace
end
`;

/** A batched script's request: its fields, joined by \31 (keys.ts's SEP). */
const FIELDS = `
local SEP = '\\31'
local function fields(packed)
  local out, from = {}, 1
  while true do
    local at = string.find(packed, SEP, from, true)
    if not at then
      out[#out + 1] = string.sub(packed, from)
      return out
    end
    out[#out + 1] = string.sub(packed, from, at - 1)
    from = at + 1
  end
end
`;

/**
 * The connections of node ARGV[1] that want a name in one event-loop turn, claimed in one
 * call, in the order they asked (the rule of engine/identity.ts, for each): the holder with
 * its resume key or token subject, a returning person taking a free name back, or a new
 * person. KEYS: names. ARGV: node, now (ms), grace (ms), then one request per argument,
 * its fields joined by \31 (which no name, key, id or hash contains): key, display name,
 * resume hash or '', subject id or '', a fresh id, a fresh resume hash, most connections per
 * person, '1' to only probe. Returns one answer per request: 'new' (a new person with the
 * fresh id, under the name asked), 'taken', 'full', 'error' (Redis failed that request),
 * or fields joined by \31: ok, id, delivered, inbox head, 'first'|'' ('first': the person
 * had no connection anywhere), the name and its key they connect under.
 * The connection counts (bc:conns:<id>, node → count) are also where the person's inbox
 * frames are routed (see PUBLISH_PRIVATE).
 *
 * Why batched: a storm of connects is mostly new people, and every call into Redis from
 * Lua costs a few microseconds of the one Redis the cluster shares, on the path before
 * each upgrade. New people of one turn share their reads and writes: one HMGET for every
 * name asked, then per person their record and connection count, and one write each for
 * all names, resume keys and this node's ids. Anyone else runs the full rule, after the
 * new people before them were written, so each request sees those before it.
 */
export const CLAIM = `${PEOPLE}${FIELDS}
local node, now, grace = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function answer(id, delivered, head, first, name, key)
  return table.concat({'ok', id, delivered, head, first, name, key}, SEP)
end
-- The connection counted on this node (where the person's inbox frames are routed) and the
-- name pointing at the person.
local function connectHere(id, key)
  redis.call('HINCRBY', 'bc:conns:' .. id, node, 1)
  redis.call('SADD', 'bc:node:' .. node .. ':ids', id)
  redis.call('HSET', KEYS[1], key, id)
end
-- One request by the full rule. Returns its answer and the name key it now holds (or nil).
local function claim(key, name, resume, subject, maxConnections, probe)
  local function attach(id)
    local before = connections(id)
    if before >= maxConnections then return 'full' end
    local record = redis.call('HMGET', 'bc:id:' .. id, 'delivered', 'key', 'resume', 'name')
    local delivered = record[1] or '0'
    -- Connected already (another tab): it joins under the person's current name, not a case
    -- or look-alike variant of it (same key) that it asked for: one person shows one name.
    if before > 0 and record[2] == key and record[4] then name = record[4] end
    if probe then return answer(id, delivered, '0', '', name, key) end
    local oldKey = record[2]
    if oldKey and oldKey ~= key and redis.call('HGET', KEYS[1], oldKey) == id then redis.call('HDEL', KEYS[1], oldKey) end
    redis.call('HSET', 'bc:id:' .. id, 'name', name, 'key', key, 'seen', now)
    connectHere(id, key)
    -- Connected: kept however long they stay (a person gone for the retention expires).
    redis.call('PERSIST', 'bc:id:' .. id)
    if record[3] then redis.call('PERSIST', 'bc:resume:' .. record[3]) end
    return answer(id, delivered, redis.call('GET', 'bc:seq:~' .. id) or '0', before == 0 and 'first' or '', name, key), key
  end
  -- A resume key whose person is connected right now joins as them, under their current name,
  -- whatever name it asked for (a tab away while another renamed the person): never someone new.
  if subject == '' and resume ~= '' then
    local back = redis.call('GET', 'bc:resume:' .. resume)
    if back and connections(back) > 0 then
      local current = redis.call('HMGET', 'bc:id:' .. back, 'name', 'key')
      if current[1] and current[2] then
        name, key = current[1], current[2]
        return attach(back)
      end
    end
  end
  local holder = redis.call('HGET', KEYS[1], key)
  if subject ~= '' then
    if holder and holder ~= subject and isHeld(holder, now, grace) then return 'taken' end
    return attach(subject)
  end
  if holder then
    if resume ~= '' and redis.call('HGET', 'bc:id:' .. holder, 'resume') == resume then return attach(holder) end
    if isHeld(holder, now, grace) then return 'taken' end
  end
  if resume ~= '' then
    local back = redis.call('GET', 'bc:resume:' .. resume)
    if back and redis.call('EXISTS', 'bc:id:' .. back) == 1 then
      if redis.call('HGET', 'bc:id:' .. back, 'key') == key or connections(back) == 0 then return attach(back) end
    end
  end
  return nil
end

local requests, asked = {}, {}
for i = 4, #ARGV do
  local request = fields(ARGV[i])
  requests[#requests + 1] = request
  asked[#asked + 1] = request[1]
end
local holders = redis.call('HMGET', KEYS[1], unpack(asked))
-- New people not yet written: their names, resume keys and ids, written together.
local names, resumes, ids = {}, {}, {}
local function writeNewPeople()
  if #ids == 0 then return end
  redis.call('HSET', KEYS[1], unpack(names))
  redis.call('MSET', unpack(resumes))
  redis.call('SADD', 'bc:node:' .. node .. ':ids', unpack(ids))
  names, resumes, ids = {}, {}, {}
end
-- Name keys that a request of this call may have changed since the HMGET read them.
local changed = {}
local answers = {}
for i, request in ipairs(requests) do
  local key, name, resume, subject, id, hash = request[1], request[2], request[3], request[4], request[5], request[6]
  local probe = request[8] == '1'
  local result
  -- A new person (nothing of theirs to read) unless it asks more or its name was held.
  if subject ~= '' or resume ~= '' or probe or holders[i] or changed[key] then
    writeNewPeople()
    -- A request that fails (a key of the wrong type) fails alone, as when each had a call
    -- of its own: the answers before it stand.
    local done, answered, held = pcall(claim, key, name, resume, subject, tonumber(request[7]), probe)
    if done then result = answered else result = 'error' end
    if held then changed[held] = true end
    changed[key] = true
  end
  if result == nil then
    if probe then
      result = answer('', '0', '0', '', '', '')
    else
      -- A new person: record, connection count here; name, resume key and id below.
      redis.call('HSET', 'bc:id:' .. id, 'resume', hash, 'delivered', '0', 'name', name, 'key', key, 'seen', now)
      redis.call('HINCRBY', 'bc:conns:' .. id, node, 1)
      names[#names + 1] = key
      names[#names + 1] = id
      resumes[#resumes + 1] = 'bc:resume:' .. hash
      resumes[#resumes + 1] = id
      ids[#ids + 1] = id
      changed[key] = true
      -- Everything else the node knows already: the id and name it sent, nothing delivered.
      result = 'new'
    end
  end
  answers[i] = result
end
writeNewPeople()
return answers
`;

/** A person with no connection left: the grace period starts, and after the retention they are forgotten. */
const GONE = `
local function gone(id, now, retention)
  redis.call('HSET', 'bc:id:' .. id, 'seen', now)
  redis.call('EXPIRE', 'bc:id:' .. id, retention)
  local resume = redis.call('HGET', 'bc:id:' .. id, 'resume')
  if resume then redis.call('EXPIRE', 'bc:resume:' .. resume, retention) end
end
`;

/**
 * One connection of person ARGV[1] on node ARGV[2] is gone. ARGV: id, node, now, the
 * person's delivered inbox mark, retention (seconds). Their last connection anywhere
 * starts the grace period (and the answer is 2 instead of 1).
 */
export const DETACH = `${GONE}
local id, node = ARGV[1], ARGV[2]
local left = redis.call('HINCRBY', 'bc:conns:' .. id, node, -1)
if left <= 0 then
  redis.call('HDEL', 'bc:conns:' .. id, node)
  redis.call('SREM', 'bc:node:' .. node .. ':ids', id)
end
if tonumber(redis.call('HGET', 'bc:id:' .. id, 'delivered') or '0') < tonumber(ARGV[4]) then
  redis.call('HSET', 'bc:id:' .. id, 'delivered', ARGV[4])
end
if redis.call('EXISTS', 'bc:conns:' .. id) == 0 then
  gone(id, ARGV[3], tonumber(ARGV[5]))
  return 2
end
return 1
`;

/**
 * After Redis comes back or this node was buried while alive (frozen past its TTL): put one
 * of this node's people back. ARGV: id, name, key, resume hash or '', connections here,
 * node, now, grace. 0 when someone else holds the name meanwhile (the node must let its
 * own person go: one name, one person), else 1. Idempotent.
 */
export const REANNOUNCE = `${PEOPLE}
local id, name, key, resume, count, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local holder = redis.call('HGET', 'bc:names', key)
if holder and holder ~= id and isHeld(holder, tonumber(ARGV[7]), tonumber(ARGV[8])) then return 0 end
redis.call('HSET', 'bc:names', key, id)
redis.call('HSET', 'bc:id:' .. id, 'name', name, 'key', key)
if resume ~= '' then
  redis.call('HSET', 'bc:id:' .. id, 'resume', resume)
  redis.call('SET', 'bc:resume:' .. resume, id, 'NX')
end
redis.call('HSETNX', 'bc:id:' .. id, 'delivered', '0')
redis.call('HSET', 'bc:conns:' .. id, node, count)
redis.call('SADD', 'bc:node:' .. node .. ':ids', id)
return 1
`;

/**
 * This node no longer has person ARGV[1] (a detach lost while Redis was down). ARGV: id,
 * node, now, retention. 2 when that was their last connection anywhere, else 1.
 */
export const FORGET = `${GONE}
redis.call('HDEL', 'bc:conns:' .. ARGV[1], ARGV[2])
redis.call('SREM', 'bc:node:' .. ARGV[2] .. ':ids', ARGV[1])
if redis.call('EXISTS', 'bc:conns:' .. ARGV[1]) == 0 then
  gone(ARGV[1], ARGV[3], tonumber(ARGV[4]))
  return 2
end
return 1
`;

/** Person ARGV[1] takes name key ARGV[2] (display ARGV[3]) unless someone else holds it. KEYS: names. ARGV[4..5]: now, grace. */
export const RENAME = `${PEOPLE}
local id, key = ARGV[1], ARGV[2]
local holder = redis.call('HGET', KEYS[1], key)
if holder and holder ~= id and isHeld(holder, tonumber(ARGV[4]), tonumber(ARGV[5])) then return 0 end
local oldKey = redis.call('HGET', 'bc:id:' .. id, 'key')
if oldKey and oldKey ~= key and redis.call('HGET', KEYS[1], oldKey) == id then redis.call('HDEL', KEYS[1], oldKey) end
redis.call('HSET', KEYS[1], key, id)
redis.call('HSET', 'bc:id:' .. id, 'key', key, 'name', ARGV[3])
return 1
`;

/** The person holding (or who last held) a name. KEYS: names. ARGV: key. {id, name, online, delivered} or nil. */
export const LOOKUP = `
local id = redis.call('HGET', KEYS[1], ARGV[1])
if not id then return nil end
if redis.call('EXISTS', 'bc:id:' .. id) == 0 then
  -- Forgotten (retention over): the name leads nowhere now.
  redis.call('HDEL', KEYS[1], ARGV[1])
  return nil
end
local online = redis.call('EXISTS', 'bc:conns:' .. id)
return {id, redis.call('HGET', 'bc:id:' .. id, 'name') or '', online, redis.call('HGET', 'bc:id:' .. id, 'delivered') or '0'}
`;

/**
 * A room's membership changes on one node: shared by join, leave and burial. Returns 0
 * (still there on another node), 1 (left the room) or 3 (left it, and it is empty now).
 * bc:rooms lists the rooms with people in them (sorted set, by name).
 */
const ROOMS = `
local function leaveRoom(room, id, node)
  if redis.call('SREM', 'bc:node:' .. node .. ':members', room .. '\\31' .. id) == 0 then return 0 end
  local left = redis.call('HINCRBY', 'bc:roomnodes:' .. room, id, -1)
  if left > 0 then return 0 end
  redis.call('HDEL', 'bc:roomnodes:' .. room, id)
  redis.call('HDEL', 'bc:members:' .. room, id)
  if redis.call('EXISTS', 'bc:members:' .. room) == 1 then return 1 end
  redis.call('ZREM', 'bc:rooms', room)
  return 3
end
`;

/**
 * The room memberships of node ARGV[1] that changed in one event-loop turn, in the order
 * they changed: each request is 'j', room, id, display name (a join) or 'l', room, id (a
 * leave: leaveRoom's answer), joined by \31. One answer per request ('error' for one Redis
 * failed). A join answers 1 when it is the person's first node in the room (presence says
 * they joined), 3 when the room was empty before them, else 0; idempotent per node, so
 * re-announcing after a Redis restart counts nobody twice. Joins into one room between two
 * leaves share their reads and writes: a storm of connects into one room costs a handful
 * of calls into Redis per turn, not five per person, and each join answers what it would
 * have answered alone, in its turn.
 */
export const MEMBERSHIP = `${ROOMS}${FIELDS}
local node = ARGV[1]
local answers = {}
-- One join alone: five calls (the shared way below costs seven, whatever the number).
local function joinOne(room, id, name)
  local empty = redis.call('EXISTS', 'bc:members:' .. room) == 0
  redis.call('HSET', 'bc:members:' .. room, id, name)
  redis.call('ZADD', 'bc:rooms', 0, room)
  if redis.call('SADD', 'bc:node:' .. node .. ':members', room .. SEP .. id) == 0 then return 0 end
  if redis.call('HINCRBY', 'bc:roomnodes:' .. room, id, 1) ~= 1 then return 0 end
  return empty and 3 or 1
end
-- Joins into one room, made together: joinOne's reads and writes, once for all of them.
local function joinAll(room, run)
  if #run == 1 then
    answers[run[1].at] = joinOne(room, run[1].id, run[1].name)
    return
  end
  local membersKey, nodeKey = 'bc:members:' .. room, 'bc:node:' .. node .. ':members'
  local empty = redis.call('EXISTS', membersKey) == 0
  local entries, ids, people = {}, {}, {}
  for k, j in ipairs(run) do
    entries[k] = room .. SEP .. j.id
    ids[k] = j.id
    people[#people + 1] = j.id
    people[#people + 1] = j.name
  end
  redis.call('HSET', membersKey, unpack(people))
  redis.call('ZADD', 'bc:rooms', 0, room)
  local here = redis.call('SMISMEMBER', nodeKey, unpack(entries))
  local counts = redis.call('HMGET', 'bc:roomnodes:' .. room, unpack(ids))
  local added, raised, seen = {}, {}, {}
  for k, j in ipairs(run) do
    local answer = 0
    if here[k] == 0 and not seen[j.id] then
      seen[j.id] = true
      added[#added + 1] = entries[k]
      local count = tonumber(counts[k] or '0') + 1
      raised[#raised + 1] = j.id
      raised[#raised + 1] = count
      -- Empty is what the room was before the run's first join: every later one found it
      -- holding at least that first joiner, as one by one.
      if count == 1 then answer = (k == 1 and empty) and 3 or 1 end
    end
    answers[j.at] = answer
  end
  if #added > 0 then
    redis.call('SADD', nodeKey, unpack(added))
    redis.call('HSET', 'bc:roomnodes:' .. room, unpack(raised))
  end
end
-- Consecutive joins, by room (a room's joins keep their order); written before a leave.
local pending, rooms = {}, {}
-- A run or a leave that fails (a key of the wrong type) fails alone: 'error' for it.
local function joinPending()
  for _, room in ipairs(rooms) do
    if not pcall(joinAll, room, pending[room]) then
      for _, j in ipairs(pending[room]) do answers[j.at] = 'error' end
    end
  end
  pending, rooms = {}, {}
end
for i = 2, #ARGV do
  local op, room, id, name = unpack(fields(ARGV[i]))
  if op == 'j' then
    local run = pending[room]
    if not run then
      run = {}
      pending[room] = run
      rooms[#rooms + 1] = room
    end
    run[#run + 1] = { id = id, name = name, at = i - 1 }
  else
    joinPending()
    local done, change = pcall(leaveRoom, room, id, node)
    answers[i - 1] = done and change or 'error'
  end
end
joinPending()
return answers
`;

/** How many people are in room ARGV[1], and the names of up to ARGV[2] of them: {count, name…}. */
export const ROOM_VIEW = `
local count = redis.call('HLEN', 'bc:members:' .. ARGV[1])
local view = {count}
if tonumber(ARGV[2]) > 0 and count > 0 then
  local page = redis.call('HSCAN', 'bc:members:' .. ARGV[1], '0', 'COUNT', ARGV[2])[2]
  for i = 2, #page, 2 do
    if #view > tonumber(ARGV[2]) then break end
    table.insert(view, page[i])
  end
end
return view
`;

/**
 * Remove a dead node's people: only what that node recorded as its own (its connections
 * and memberships sets), never a scan over everyone. ARGV: node, now, retention. Returns
 * three lists: {room, name, id, ...} of the people who left rooms with it (presence
 * frames), the rooms left empty, and {id, name, ...} of the people who had no other
 * connection anywhere.
 */
export const BURY = `${ROOMS}${GONE}
local node = ARGV[1]
if redis.call('EXISTS', 'bc:node:' .. node .. ':alive') == 1 then return {{}, {}, {}} end
local departed, vacated, offline = {}, {}, {}
for _, entry in ipairs(redis.call('SMEMBERS', 'bc:node:' .. node .. ':members')) do
  local sep = string.find(entry, '\\31', 1, true)
  local room = string.sub(entry, 1, sep - 1)
  local id = string.sub(entry, sep + 1)
  local name = redis.call('HGET', 'bc:members:' .. room, id)
  local change = leaveRoom(room, id, node)
  if change > 0 and name then
    table.insert(departed, room)
    table.insert(departed, name)
    table.insert(departed, id)
  end
  if change == 3 then table.insert(vacated, room) end
end
redis.call('DEL', 'bc:node:' .. node .. ':members')
for _, id in ipairs(redis.call('SMEMBERS', 'bc:node:' .. node .. ':ids')) do
  redis.call('HDEL', 'bc:conns:' .. id, node)
  if redis.call('EXISTS', 'bc:conns:' .. id) == 0 then
    gone(id, ARGV[2], tonumber(ARGV[3]))
    table.insert(offline, id)
    table.insert(offline, redis.call('HGET', 'bc:id:' .. id, 'name') or '')
  end
end
redis.call('DEL', 'bc:node:' .. node .. ':ids')
redis.call('SREM', 'bc:nodes', node)
return {departed, vacated, offline}
`;
