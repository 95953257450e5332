-- report: ARGV[A0+1] session, [A0+2] the block's token.
local s = get(ARGV[A0 + 1])
local reported
if s then
  if s.st == 2 then
    reported = s.pt
    end_chat(s, 'reported')
  elseif s.lt and s.lt ~= '' and tsub(NOW, NOWR, tonumber(s.le), tonumber(s.lr)) <= RECENT then
    reported = s.lt
  end
end
if reported then
  res[2] = reported
  block(s.id, reported, ARGV[A0 + 2])
else
  res[1] = 'NOTCHATTING'
end
flush()
return res
