--[[
  Wakes the silo that owns a grain, in one step with reading who that is: sent right behind the
  enqueue of the grain's message (on the same connection, without waiting), so that the message
  and its wake-up cost the sender one round trip. On one Redis only: the owner's membership record
  and inbox are keys of another Redis Cluster slot than the grain's, and not declared here (the
  owner is only known inside the script).

  Nothing waiting in the mailbox means the enqueue did not run first (ioredis sends a script again,
  after what was sent behind it, when Redis answered NOSCRIPT) or its message is already taken:
  then no one is woken, and the sender calls this again once the enqueue is acknowledged.

  KEYS[1] the grain's directory entry (hash with field silo)
  KEYS[2] the grain's mailbox waiting list

  ARGV[1] what the silo's keys start with, up to its id (`<prefix>:s:{`)
  ARGV[2] the inbox entry (the grain's tag)

  Returns 1 the owner was woken (it takes wake-ups: joining, active or stopping)
          2 nothing waits in the mailbox: no one was woken
          0 no silo owns the grain, or its owner takes no wake-ups: the caller routes the wake-up
]]
if redis.call('LLEN', KEYS[2]) == 0 then
  return 2
end
local owner = redis.call('HGET', KEYS[1], 'silo')
if not owner then
  return 0
end
local status = redis.call('HGET', ARGV[1] .. owner .. '}:info', 'status')
if status == 'active' or status == 'joining' or status == 'stopping' then
  redis.call('LPUSH', ARGV[1] .. owner .. '}:inbox', ARGV[2])
  return 1
end
return 0
