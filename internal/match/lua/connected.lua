-- connected: ARGV[A0+1] session, [A0+2] '1' back or '0' dropped.
-- The caller becomes the session's node (a resume may come to any node).
local id, c = ARGV[A0 + 1], ARGV[A0 + 2]
local s = get(id)
if not s and c == '0' then
  -- Remember the drop even of an idle session: a join reaching the engine
  -- before the reconnect must not be matched.
  s = new(id)
  set(s, 'cn', '0')
elseif s then
  own(s)
  if s.cn ~= c then
    set(s, 'cn', c)
    if s.st ~= 1 then
      forget_if_empty(s)
    elseif c == '1' then
      -- The interest clock ran on: its timer may have been on a node that
      -- died, so check the deadline here too.
      if #s.ins > 0 and s.to ~= '1' and tsub(NOW, NOWR, tonumber(s.eq), tonumber(s.er)) >= ITO then
        time_out_older(s) -- s is not in the queues yet: none of them takes it
        set(s, 'to', '1')
      end
      if not try_match(s) then link(s) end
    else
      unlink(s)
    end
  end
  want_timer(s)
end
flush()
return res
