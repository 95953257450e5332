-- timeout: the interest timeout of ARGV[A0+1] for its queue stay
-- ARGV[A0+2] (seq) passed: it accepts anyone now.
local s = get(ARGV[A0 + 1])
if s and s.st == 1 and s.sq == tonumber(ARGV[A0 + 2]) and s.to ~= '1' then
  set(s, 'to', '1')
  if s.cn == '1' then
    if not try_match(s) then redis.call('ZADD', qkey(s.md, 'x'), s.sq, s.id) end
  end
end
flush()
return res
