-- end: ARGV[A0+1] session, [A0+2] reason.
local s = get(ARGV[A0 + 1])
if s then end_session(s, ARGV[A0 + 2]) end
flush()
return res
