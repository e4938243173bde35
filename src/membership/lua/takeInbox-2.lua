--[[
  Moves up to ARGV[1] more wake-ups from a silo's inbox onto its taking list and returns them,
  oldest first. The taking list holds what the silo has taken but not yet handled, so a reply
  lost in a disconnect (or a crash) loses no wake-up: they are handled again from there.

  KEYS[1] the silo's inbox
  KEYS[2] the silo's taking list

  ARGV[1] the most entries to move
  ARGV[2] '1': first clear the taking list (everything on it was handled), else ''

  Returns the entries moved (possibly none)
]]
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
end
local entries = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not entries then return {} end
redis.call('LPUSH', KEYS[2], unpack(entries))
return entries
