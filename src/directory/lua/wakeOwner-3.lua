--[[
  Wakes the silo that owns a grain, in one step with reading who that is: sent right behind the
  enqueue of the grain's message (on the same connection, without waiting), so that the message
  and its wake-up cost the sender one round trip. On one Redis only: the owner's membership record
  and inbox are keys of another Redis Cluster slot than the grain's, and not declared here (the
  owner is only known inside the script).

  Nothing waiting in the mailbox means the enqueue did not run first (ioredis sends a script again,
  after what was sent behind it, when Redis answered NOSCRIPT) or its message is already taken:
  then no one is woken, and the sender calls this again once the enqueue is acknowledged.

  When the message is the only one in the mailbox (nothing else waiting, nothing taken) and small,
  the wake-up carries it: `+` and a JSON object with the owner's activation epoch (e), the job's
  id (j), the grain's tag (t), the job's name (n) and data (d). An idle activation of that epoch may
  then run it at once while its take is under way (see MessageLoop.wake); anything else reads it
  as a plain wake-up of the grain.

  KEYS[1] the grain's directory entry (hash with fields silo, epoch)
  KEYS[2] the grain's mailbox waiting list
  KEYS[3] the grain's mailbox taken (active) list

  ARGV[1] what the silo's keys start with, up to its id (`<prefix>:s:{`)
  ARGV[2] the inbox entry (the grain's tag)
  ARGV[3] what the keys of the mailbox's jobs start with (`<mailbox>:`; the job's id follows)
  ARGV[4] the largest job data a wake-up carries (bytes; 0: never)

  Returns 1 the owner was woken (it takes wake-ups: joining, active or stopping)
          2 nothing waits in the mailbox: no one was woken
          0 no silo owns the grain, or its owner takes no wake-ups: the caller routes the wake-up
]]
local waiting = redis.call('LLEN', KEYS[2])
if waiting == 0 then
  return 2
end
local entry = redis.call('HMGET', KEYS[1], 'silo', 'epoch')
local owner = entry[1]
if not owner then
  return 0
end
local status = redis.call('HGET', ARGV[1] .. owner .. '}:info', 'status')
if status ~= 'active' and status ~= 'joining' and status ~= 'stopping' then
  return 0
end
local wake = ARGV[2]
local largest = tonumber(ARGV[4]) or 0
if waiting == 1 and entry[2] and largest > 0 and redis.call('LLEN', KEYS[3]) == 0 then
  local id = redis.call('LINDEX', KEYS[2], 0)
  local job = redis.call('HMGET', ARGV[3] .. id, 'name', 'data', 'ats')
  if job[1] and job[2] and not job[3] and #job[2] > 0 and #job[2] <= largest then
    wake = '+' .. cjson.encode({ e = entry[2], j = id, t = ARGV[2], n = job[1], d = job[2] })
  end
end
redis.call('LPUSH', ARGV[1] .. owner .. '}:inbox', wake)
return 1
