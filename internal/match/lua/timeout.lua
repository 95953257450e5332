-- timeout: the interest timeout of ARGV[A0+1] for its queue stay
-- ARGV[A0+2] (seq) passed: it accepts anyone now.
local s = get(ARGV[A0 + 1])
if s and s.st == 1 and s.sq == tonumber(ARGV[A0 + 2]) and s.to ~= '1' then
  if s.cn == '1' then
    time_out_older(s)
    s = get(s.id) -- an older one may have been matched with it
  end
  if s and s.st == 1 and s.to ~= '1' then time_out(s) end
end
flush()
return res
