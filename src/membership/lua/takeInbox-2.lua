--[[
  Moves up to ARGV[1] more wake-ups from a silo's inbox onto its taking list and returns them,
  oldest first. The taking list holds what the silo has taken but not yet handled, so a reply
  lost in a disconnect (or a crash) loses no wake-up: they are handled again from there.

  First it takes off the taking list the wake-ups the silo's last read handled (ARGV[2..], as
  that read moved them, duplicates included): the oldest copy of each (LREM from the tail, where
  the oldest are), or the whole list when it holds just as many, as it does unless something
  else reached it meanwhile (a BLMOVE the silo had already given up on, served late): that one
  stays, to be handled after the silo's next reconnect or read of the list.

  KEYS[1] the silo's inbox
  KEYS[2] the silo's taking list

  ARGV[1] the most entries to move
  ARGV[2..] the entries the last read handled

  Returns the entries moved (possibly none)
]]
local handled = #ARGV - 1
if handled > 0 then
  if redis.call('LLEN', KEYS[2]) == handled then
    redis.call('DEL', KEYS[2])
  else
    for i = 2, #ARGV do
      redis.call('LREM', KEYS[2], -1, ARGV[i])
    end
  end
end
local entries = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if not entries then return {} end
redis.call('LPUSH', KEYS[2], unpack(entries))
return entries
