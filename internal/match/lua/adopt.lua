-- adopt: node ARGV[A0+2] (the caller if '') takes session ARGV[A0+1] and the
-- caller gets its record, after the events published before the move (its
-- marker follows them). Used for a resume on another node: by the new node
-- when the old one died, by the old node when it hands the session over.
-- With ARGV[A0+3] = '1' nothing moves (a read for resynchronisation).
-- The connection state is unchanged (SetConnected(true) follows once the
-- session is set up on its new node). Events from now on go to the new node.
local s = get(ARGV[A0 + 1])
if s then
  local to = ARGV[A0 + 2]
  if to == '' then to = NODE end
  if ARGV[A0 + 3] ~= '1' and s.nd ~= to then
    redis.call('SREM', nskey(s.nd), s.id)
    redis.call('SADD', nskey(to), s.id)
    set(s, 'nd', to)
  end
  res[2] = cjson.encode(redis.call('HGETALL', skey(s.id)))
end
flush()
return res
