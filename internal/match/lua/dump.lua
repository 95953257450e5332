-- dump: every key of the deployment, for CheckInvariants (tests only: KEYS).
local out = {}
for _, k in ipairs(redis.call('KEYS', P .. '*')) do
  local t = redis.call('TYPE', k)['ok']
  local v
  if t == 'hash' then v = redis.call('HGETALL', k)
  elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
  elseif t == 'set' then v = redis.call('SMEMBERS', k)
  elseif t == 'string' then v = {redis.call('GET', k)}
  else v = {} end
  out[#out + 1] = {k, t, v}
end
res[2] = cjson.encode(out)
return res
