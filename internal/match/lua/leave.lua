-- leave: ARGV[A0+1] session.
local s = get(ARGV[A0 + 1])
if s then
  if s.st == 2 then
    end_chat(s, 'left')
  elseif s.st == 1 then
    dequeue(s)
    set(s, 'st', 0)
    forget_if_empty(s)
  end
end
flush()
return res
