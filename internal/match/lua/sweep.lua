-- sweep: run by every node every heartbeat interval. Nodes whose heartbeat
-- expired are dead: their sessions count as dropped (never matched) at once
-- and end after GRACE unless another node adopted them meanwhile. Report
-- blocks whose time is over end here too when the node that armed their
-- timer is gone, and so do all identity blocks whose time is over. Scripts are atomic, so nodes sweeping together do the work
-- once.
local NODES = P .. 'nodes'
local REAP = P .. 'reap'
local dead = 0
for _, node in ipairs(redis.call('SMEMBERS', NODES)) do
  -- (Never the caller itself: it is alive, its next beat renews its key.)
  if node ~= NODE and redis.call('EXISTS', P .. 'hb:' .. node) == 0 then
    dead = dead + 1
    redis.call('SREM', NODES, node)
    for _, id in ipairs(redis.call('SMEMBERS', nskey(node))) do
      local s = get(id)
      if s and s.cn == '1' then
        set(s, 'cn', '0')
        if s.st == 1 then unlink(s) end
      end
    end
    redis.call('ZADD', REAP, NOW + GRACE, node)
  end
end
local ended = 0
for _, node in ipairs(redis.call('ZRANGEBYSCORE', REAP, '-inf', NOW)) do
  for _, id in ipairs(redis.call('SMEMBERS', nskey(node))) do
    local s = get(id)
    if s and s.nd == node then
      end_session(s, 'disconnected')
      ended = ended + 1
    end
  end
  redis.call('DEL', nskey(node))
  redis.call('ZREM', REAP, node)
end
local unblocked = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', BLOCKS, '-inf', NOW)) do
  unblock(m)
  unblocked = unblocked + 1
end
-- Identity blocks have no timer: they end here, at most a sweep interval
-- late.
for _, m in ipairs(redis.call('ZRANGEBYSCORE', IBLOCKS, '-inf', NOW)) do
  unblock_identities(m)
  unblocked = unblocked + 1
end
res[2] = dead .. ' ' .. ended .. ' ' .. unblocked
flush()
return res
