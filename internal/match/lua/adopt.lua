-- adopt: the caller's node takes session ARGV[A0+1] (a resume of a session
-- whose node died) and gets its record; its connection state is unchanged
-- (SetConnected(true) follows once the session is set up locally). Events
-- from now on go to the caller.
local s = get(ARGV[A0 + 1])
if s then
  own(s)
  res[2] = cjson.encode(redis.call('HGETALL', skey(s.id)))
end
flush()
return res
