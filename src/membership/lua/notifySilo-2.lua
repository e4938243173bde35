--[[
  Wakes a silo for one grain by pushing the grain's tag onto the silo's inbox, but only while the
  silo takes wake-ups (joining, active or stopping). A silo that left or was declared dead gets
  nothing, so no wake-up is ever stranded in the inbox of a silo that will not read it.

  KEYS[1] the silo's membership record (hash with field status)
  KEYS[2] the silo's inbox (list)

  ARGV[1] grain tag

  Returns 1 pushed, 0 the silo does not take wake-ups (the caller routes elsewhere)
]]
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'active' or status == 'joining' or status == 'stopping' then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
