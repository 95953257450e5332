-- unblock: the block of pair ARGV[A0+1] with token ARGV[A0+2] expired (a
-- renewed block has another token and stays).
local m = ARGV[A0 + 1]
if redis.call('GET', P .. 'b:' .. m) == ARGV[A0 + 2] then unblock(m) end
flush()
return res
