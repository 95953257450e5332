-- lib.lua: the state model shared by every engine script (each script is
-- this file followed by its own). Keys are built here from the prefix, so a
-- script touches keys it did not declare: this needs a single Redis (not
-- Redis Cluster), which is what the Redis backend supports.
--
-- Session hash P..'s:'..id, fields:
--   st  0 idle, 1 waiting, 2 chatting     cn  '1' connected, '0' dropped
--   nd  node holding the connection       md  mode (1 video, 2 text)
--   in  interests (cjson array, '' none)  sq  enqueue seq (lower waited longer)
--   eq, er  enqueue time (ms, ns in ms)   to  '1' interest timeout passed
--   rm, pt, ini, cm  room, partner, initiator '1'/'0', common (cjson)
--   lt  last partner                      le, lr  when that chat ended
--   iq  highest client seq processed (see flush)
--   ih  identity hash of the last join or next ('' unknown)
--   the current or last chat, written at the match and kept until the next
--   one (what a report returns, even after the partner's record is gone):
--   xr room, xm mode, xc common (cjson), xa, xn start (ms, ns in ms),
--   xi own identity at the match, xp the partner's identity at the match
-- Queues, per mode m, of connected waiting sessions scored by sq:
--   P..'q:'..m..':i:'..interest   sharing that interest
--   P..'q:'..m..':p'              without interests (accept anyone)
--   P..'q:'..m..':x'              interests timed out (accept anyone)
--   P..'q:'..m..':t'              with interests, timeout not yet passed
-- P..'b:'..a..'\t'..b  a reported pair (a < b); value: the block's token
-- P..'blocks'  zset of reported pairs by expiry (ms), for the sweeper
-- P..'bi:'..a..'\t'..b  a reported pair of identities (a < b); value: token
-- P..'iblocks'  zset of reported identity pairs by expiry (ms): the sweeper
--               lifts them (no per-node timer)
-- P..'bx:'..ih  exists while identity ih may be in an identity block, so a
--               scan for a session of an identity never reported costs one
--               EXISTS, not one per candidate
-- P..'iw:'..ih  set of the connected waiting sessions of identity ih (those
--               in the queues), to retry matching when an identity block ends
-- P..'stats'   hash: seq, w, w1, w2, chats, matches, sessions, rooms
-- P..'ns:'..node  set of the session records whose nd is node
--
-- Time comes from the calling node's clock (never TIME), as whole ms plus
-- the ns within the ms: differences are exact in a double for 104 days.

local P = ARGV[1]
local NODE = ARGV[2]
local OP = ARGV[3]
local NOW = tonumber(ARGV[4])
local NOWR = tonumber(ARGV[5])
local ITO = tonumber(ARGV[6])
local RECENT = tonumber(ARGV[7])
local BLOCKMS = tonumber(ARGV[8])
local MAXW = tonumber(ARGV[9])
local ROOMS = {ARGV[10], ARGV[11]}
local GRACE = tonumber(ARGV[12])
local INSEQ = ARGV[13] -- the client frame this operation carries out ('' none)
local A0 = 13 -- op arguments start at ARGV[A0 + 1]

local STATS = P .. 'stats'
local BLOCKS = P .. 'blocks'
local IBLOCKS = P .. 'iblocks'

local function nstr(x) return string.format('%.0f', x) end

-- ns from (bms, br) to (ams, ar)
local function tsub(ams, ar, bms, br) return (ams - bms) * 1000000 + (ar - br) end

local function skey(id) return P .. 's:' .. id end
local function nskey(node) return P .. 'ns:' .. node end
local function chan(node) return P .. 'n:' .. node end
local function qkey(mode, kind, interest)
  if kind == 'i' then return P .. 'q:' .. mode .. ':i:' .. interest end
  return P .. 'q:' .. mode .. ':' .. kind
end
local function pairmember(a, b)
  if a > b then a, b = b, a end
  return a .. '\t' .. b
end
local function bkey(a, b) return P .. 'b:' .. pairmember(a, b) end
local function iwkey(ih) return P .. 'iw:' .. ih end

-- Events, collected per node and published at the end (one message per
-- node; the caller's carries the op marker after its events).
local outq, outorder = {}, {}
local function emit(s, ev)
  ev.s = s.id
  local node = s.nd or ''
  if node == '' then return end
  local q = outq[node]
  if not q then
    q = {}
    outq[node] = q
    outorder[#outorder + 1] = node
  end
  q[#q + 1] = ev
end
local function flush()
  -- The highest client seq processed for the operation's session is kept
  -- with the change it caused: a resume after the session's node died
  -- answers it as lastSeq, so the client re-sends exactly what was lost.
  if INSEQ ~= '' then
    local k = skey(ARGV[A0 + 1])
    local old = redis.call('HGET', k, 'iq')
    if old or redis.call('EXISTS', k) == 1 then
      if not old or tonumber(old) < tonumber(INSEQ) then redis.call('HSET', k, 'iq', INSEQ) end
    end
  end
  for _, node in ipairs(outorder) do
    local msg = {e = outq[node]}
    if node == NODE and OP ~= '' then msg.m = OP end
    redis.call('PUBLISH', chan(node), 'e' .. cjson.encode(msg))
  end
  if OP ~= '' and not outq[NODE] then
    redis.call('PUBLISH', chan(NODE), 'e' .. cjson.encode({m = OP}))
  end
end

-- Session records.
local function get(id)
  local raw = redis.call('HGETALL', skey(id))
  if #raw == 0 then return nil end
  local s = {id = id}
  for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
  s.st = tonumber(s.st)
  s.md = tonumber(s.md or '0')
  s.sq = tonumber(s.sq or '0')
  if s['in'] and s['in'] ~= '' then s.ins = cjson.decode(s['in']) else s.ins = {} end
  return s
end

local function set(s, ...)
  local args = {...}
  for i = 1, #args, 2 do s[args[i]] = args[i + 1] end
  redis.call('HSET', skey(s.id), ...)
end

local function new(id)
  local s = {id = id, st = 0, cn = '1', nd = NODE, md = 0, sq = 0, ins = {}}
  redis.call('HSET', skey(id), 'st', 0, 'cn', '1', 'nd', NODE)
  redis.call('SADD', nskey(NODE), id)
  redis.call('HINCRBY', STATS, 'sessions', 1)
  return s
end

local function del(s)
  redis.call('DEL', skey(s.id))
  redis.call('SREM', nskey(s.nd), s.id)
  redis.call('HINCRBY', STATS, 'sessions', -1)
end

-- own makes the caller's node the session's node.
local function own(s)
  if s.nd ~= NODE then
    redis.call('SREM', nskey(s.nd), s.id)
    redis.call('SADD', nskey(NODE), s.id)
    set(s, 'nd', NODE)
  end
end

-- forget drops the record of an idle session with nothing to remember.
local function forget_if_empty(s)
  if s.st == 0 and s.cn == '1' and (s.lt == nil or s.lt == '') then del(s) end
end

local function open(s) return #s.ins == 0 or s.to == '1' end

local function link(s)
  if s.ih and s.ih ~= '' then redis.call('SADD', iwkey(s.ih), s.id) end
  for _, x in ipairs(s.ins) do redis.call('ZADD', qkey(s.md, 'i', x), s.sq, s.id) end
  if #s.ins == 0 then
    redis.call('ZADD', qkey(s.md, 'p'), s.sq, s.id)
  elseif s.to == '1' then
    redis.call('ZADD', qkey(s.md, 'x'), s.sq, s.id)
  else
    redis.call('ZADD', qkey(s.md, 't'), s.sq, s.id)
  end
end

local function unlink(s)
  if s.ih and s.ih ~= '' then redis.call('SREM', iwkey(s.ih), s.id) end
  for _, x in ipairs(s.ins) do redis.call('ZREM', qkey(s.md, 'i', x), s.id) end
  if #s.ins == 0 then
    redis.call('ZREM', qkey(s.md, 'p'), s.id)
  else
    redis.call('ZREM', qkey(s.md, 'x'), s.id)
    redis.call('ZREM', qkey(s.md, 't'), s.id)
  end
end

local function dequeue(s)
  unlink(s)
  redis.call('HINCRBY', STATS, 'w' .. s.md, -1)
  redis.call('HINCRBY', STATS, 'w', -1)
end

-- Room ids come from the caller (random, from crypto/rand): two per call;
-- a sweep that makes more matches suffixes the first. '#': "room1",
-- "room2", ... from a counter (tests comparing with the in-memory engine).
local roomsUsed = 0
local function new_room()
  roomsUsed = roomsUsed + 1
  if ROOMS[1] == '#' then
    return 'room' .. redis.call('HINCRBY', STATS, 'rooms', 1)
  end
  local r = ROOMS[roomsUsed]
  if r == nil or r == '' then
    -- Never fail half-way (a script's writes are not rolled back): an
    -- operation that should not match got no ids; name the room anyway.
    if ROOMS[1] == '' then return 'r_n' .. redis.call('HINCRBY', STATS, 'rooms', 1) end
    return ROOMS[1] .. '_' .. roomsUsed
  end
  return r
end

-- waited is how long x waited, never negative (nodes' clocks differ by a
-- little, and a script may run after one with a later clock).
local function waited(x)
  local w = tsub(NOW, NOWR, tonumber(x.eq), tonumber(x.er))
  if w < 0 then w = 0 end
  return nstr(w)
end

local function match(a, b)
  if b.sq < a.sq then a, b = b, a end
  local common = {}
  for _, x in ipairs(a.ins) do
    for _, y in ipairs(b.ins) do
      if x == y then common[#common + 1] = x; break end
    end
  end
  dequeue(a)
  dequeue(b)
  local room = new_room()
  local cm = '[]'
  if #common > 0 then cm = cjson.encode(common) end
  local ia, ib = a.ih or '', b.ih or ''
  set(a, 'st', 2, 'rm', room, 'pt', b.id, 'ini', '1', 'cm', cm,
    'xr', room, 'xm', a.md, 'xc', cm, 'xa', NOW, 'xn', NOWR, 'xi', ia, 'xp', ib)
  set(b, 'st', 2, 'rm', room, 'pt', a.id, 'ini', '0', 'cm', cm,
    'xr', room, 'xm', b.md, 'xc', cm, 'xa', NOW, 'xn', NOWR, 'xi', ib, 'xp', ia)
  for _, x in ipairs({a, b}) do
    redis.call('HDEL', skey(x.id), 'lt', 'le', 'lr')
    x.lt = nil
  end
  redis.call('HINCRBY', STATS, 'chats', 1)
  redis.call('HINCRBY', STATS, 'matches', 1)
  emit(a, {k = 2, r = room, p = b.id, i = 1, m = a.md, c = cm, w = waited(a)})
  emit(b, {k = 2, r = room, p = a.id, i = 0, m = b.md, c = cm, w = waited(b)})
end

-- identity_pair is the identity block key between identities x and y, or
-- nil when there can be none: one unknown, or both the same (two tabs of one
-- household behind one address, every test client on 127.0.0.1). Such a
-- block would keep the identity from its own sessions, which is not the
-- pair that was reported; the session block still holds.
local function identity_pair(x, y)
  if not x or not y or x == '' or y == '' or x == y then return nil end
  return P .. 'bi:' .. pairmember(x, y)
end

-- scan looks in one queue (every entry of which accepts s and is accepted by
-- it) for the oldest entry that is neither s, nor blocked with s (by session
-- or, if ikeys, by identity), nor just parted from s; those just parted go
-- to recent instead.
local function scan(key, s, best, recent, ikeys)
  local off = 0
  while true do
    local max = '+inf'
    if best then max = '(' .. best.sq end
    local items = redis.call('ZRANGEBYSCORE', key, '-inf', max, 'WITHSCORES', 'LIMIT', off, 16)
    if #items == 0 then return best, recent end
    for i = 1, #items, 2 do
      local cid, csq = items[i], tonumber(items[i + 1])
      local free = cid ~= s.id and redis.call('EXISTS', bkey(s.id, cid)) == 0
      local c
      if free then
        c = redis.call('HMGET', skey(cid), 'lt', 'ih')
        if ikeys then
          local k = identity_pair(s.ih, c[2])
          if k and redis.call('EXISTS', k) == 1 then free = false end
        end
      end
      if free then
        if s.lt == cid or c[1] == s.id then
          if not recent or csq < recent.sq then recent = {id = cid, sq = csq} end
        else
          return {id = cid, sq = csq}, recent
        end
      end
    end
    off = off + 16
  end
end

-- try_match matches the connected waiting session s with the partner the
-- rules choose, if any. Only s changed, so only pairs with s can have
-- become possible (matching is complete after every script).
local function try_match(s)
  local best, recent
  local ikeys = s.ih and s.ih ~= '' and redis.call('EXISTS', P .. 'bx:' .. s.ih) == 1
  for _, x in ipairs(s.ins) do
    best, recent = scan(qkey(s.md, 'i', x), s, best, recent, ikeys)
  end
  if open(s) then
    best, recent = scan(qkey(s.md, 'p'), s, best, recent, ikeys)
    best, recent = scan(qkey(s.md, 'x'), s, best, recent, ikeys)
  end
  if not best then best = recent end
  if best then
    match(get(best.id), s)
    return true
  end
  return false
end

-- time_out: the interest timeout of the waiting s passed; it accepts anyone
-- now, and is matched if someone accepts it.
local function time_out(s)
  set(s, 'to', '1')
  if s.cn == '1' then
    redis.call('ZREM', qkey(s.md, 't'), s.id)
    if not try_match(s) then redis.call('ZADD', qkey(s.md, 'x'), s.sq, s.id) end
  end
end

-- time_out_older: every connected session that entered the queue before s
-- with interests has passed the (common) interest timeout too, even if its
-- own timer, maybe on another node, has not fired yet. They time out first,
-- oldest first, so that whichever timer fires first, the longest waiting is
-- matched first (rule 4).
local function time_out_older(s)
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', qkey(s.md, 't'), '-inf', '(' .. s.sq)) do
    local o = get(id)
    if o and o.st == 1 and o.to ~= '1' then time_out(o) end
  end
end

-- end_chat ends the chat of s: both idle, each remembers the other, the
-- partner hears reason.
local function end_chat(s, reason)
  local p = get(s.pt)
  local room = s.rm
  for _, x in ipairs({s, p}) do
    redis.call('HDEL', skey(x.id), 'rm', 'pt', 'ini', 'cm')
    x.rm, x.pt, x.ini, x.cm = nil, nil, nil, nil
  end
  set(s, 'st', 0, 'lt', p.id, 'le', NOW, 'lr', NOWR)
  set(p, 'st', 0, 'lt', s.id, 'le', NOW, 'lr', NOWR)
  redis.call('HINCRBY', STATS, 'chats', -1)
  emit(p, {k = 3, r = room, x = reason})
end

-- The result of every script: {code, value, timer session, timer seq,
-- timer delay ns, block pair, block token}.
local res = {'OK', '', '', '', '', '', ''}

-- want_timer asks the caller to arm the interest timer of s.
local function want_timer(s)
  if s.st == 1 and #s.ins > 0 and s.to ~= '1' then
    local left = ITO - tsub(NOW, NOWR, tonumber(s.eq), tonumber(s.er))
    if left < 0 then left = 0 end
    res[3], res[4], res[5] = s.id, nstr(s.sq), nstr(left)
  end
end

local function admit()
  if MAXW > 0 and tonumber(redis.call('HGET', STATS, 'w') or '0') >= MAXW then return false end
  return true
end

-- enqueue puts the idle s in the queue: waiting, then a match if possible.
local function enqueue(s, mode, ih, ins)
  local sq = redis.call('HINCRBY', STATS, 'seq', 1)
  local inj = ''
  if #ins > 0 then inj = cjson.encode(ins) end
  s.ins = ins
  s.md = mode
  s.sq = sq
  set(s, 'st', 1, 'md', mode, 'in', inj, 'sq', sq, 'eq', NOW, 'er', NOWR, 'to', '0', 'ih', ih)
  redis.call('HINCRBY', STATS, 'w' .. mode, 1)
  redis.call('HINCRBY', STATS, 'w', 1)
  emit(s, {k = 1})
  if s.cn == '1' then
    if not try_match(s) then link(s) end
  end
  want_timer(s)
end

local function end_session(s, reason)
  if s.st == 2 then
    end_chat(s, reason)
  elseif s.st == 1 then
    dequeue(s)
  end
  del(s)
end

local function block(a, b, token)
  local m = pairmember(a, b)
  redis.call('SET', bkey(a, b), token, 'PX', BLOCKMS + 3600000)
  redis.call('ZADD', BLOCKS, NOW + BLOCKMS, m)
  res[6], res[7] = m, token
end

-- block_identities blocks identities x and y (an identity_pair) for
-- BLOCKMS. Redis drops the keys an hour after the sweeper should have.
local function block_identities(x, y, token)
  local k = identity_pair(x, y)
  if not k then return end
  local ms = BLOCKMS + 3600000
  redis.call('SET', k, token, 'PX', ms)
  redis.call('ZADD', IBLOCKS, NOW + BLOCKMS, pairmember(x, y))
  -- Every new block is the latest to end: the markers last as long.
  redis.call('SET', P .. 'bx:' .. x, '1', 'PX', ms)
  redis.call('SET', P .. 'bx:' .. y, '1', 'PX', ms)
end

-- unblock_identities ends the block of identity pair m and retries matching
-- for the connected waiting sessions of both identities, oldest first.
local function unblock_identities(m)
  redis.call('DEL', P .. 'bi:' .. m)
  redis.call('ZREM', IBLOCKS, m)
  local tab = string.find(m, '\t', 1, true)
  local retry = {}
  for _, ih in ipairs({string.sub(m, 1, tab - 1), string.sub(m, tab + 1)}) do
    for _, id in ipairs(redis.call('SMEMBERS', iwkey(ih))) do
      local s = get(id)
      if s then retry[#retry + 1] = s end
    end
  end
  table.sort(retry, function(x, y) return x.sq < y.sq end)
  for _, x in ipairs(retry) do
    local s = get(x.id) -- an earlier retry may have matched it
    if s and s.st == 1 and s.cn == '1' then try_match(s) end
  end
end

-- unblock ends the block of pair m and retries matching for both.
local function unblock(m)
  redis.call('DEL', P .. 'b:' .. m)
  redis.call('ZREM', BLOCKS, m)
  local tab = string.find(m, '\t', 1, true)
  for _, id in ipairs({string.sub(m, 1, tab - 1), string.sub(m, tab + 1)}) do
    local s = get(id)
    if s and s.st == 1 and s.cn == '1' then try_match(s) end
  end
end

local function args_from(i)
  local out = {}
  for j = A0 + i, #ARGV do out[#out + 1] = ARGV[j] end
  return out
end
