-- join: ARGV[A0+1] session, [A0+2] mode, [A0+3] identity hash
-- ('' unknown), [A0+4..] interests.
local id, mode = ARGV[A0 + 1], tonumber(ARGV[A0 + 2])
local s = get(id)
if s and s.st ~= 0 then
  res[1] = 'BADSTATE'
elseif not admit() then
  res[1] = 'OVERLOADED'
else
  if not s then s = new(id) else own(s) end
  enqueue(s, mode, ARGV[A0 + 3], args_from(4))
end
flush()
return res
