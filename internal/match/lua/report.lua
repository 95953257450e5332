-- report: ARGV[A0+1] session, [A0+2] the blocks' token. The answer is the
-- reported chat as the reporter's record kept it (cjson, all strings): the
-- reported session may have ended, its record gone with its node.
local s = get(ARGV[A0 + 1])
local reported, ems, ens
if s then
  if s.st == 2 then
    reported, ems, ens = s.pt, nstr(NOW), nstr(NOWR)
    end_chat(s, 'reported')
  elseif s.lt and s.lt ~= '' and tsub(NOW, NOWR, tonumber(s.le), tonumber(s.lr)) <= RECENT then
    reported, ems, ens = s.lt, s.le, s.lr
  end
end
if reported then
  res[2] = cjson.encode({p = reported, r = s.xr or '', m = tostring(s.xm or '0'), c = s.xc or '[]',
    sa = s.xa or '', sn = s.xn or '', ea = ems, en = ens, ri = s.xi or '', si = s.xp or ''})
  block(s.id, reported, ARGV[A0 + 2])
  block_identities(s.xi, s.xp, ARGV[A0 + 2])
else
  res[1] = 'NOTCHATTING'
end
flush()
return res
