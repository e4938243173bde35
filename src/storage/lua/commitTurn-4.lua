--[[
  Commits a turn's state changes, fenced: only the activation that owns the grain (silo + epoch)
  and, when the turn handled a message, still holds that message's BullMQ lock may write.
  It runs in one MULTI with BullMQ's moveToFinished for the same message, so the state change and
  the acknowledgement land together. When the fence fails and this activation still holds the
  lock, the lock is dropped so the acknowledgement queued after it fails too and the message is
  processed again by the rightful owner.

  KEYS[1] the grain's directory entry
  KEYS[2] the grain's state hash
  KEYS[3] the message's lock key (any key of the grain when ARGV[3] is '')
  KEYS[4] the message's idempotency record (any key of the grain when ARGV[4] is '0')

  ARGV[1] silo id
  ARGV[2] activation epoch
  ARGV[3] the message's lock token, or '' for a commit outside a message (deactivation)
  ARGV[4] how long to keep the idempotency record (ms), or '0' for none
  ARGV[5] the idempotency record: the message's outcome, returned to duplicates
  ARGV[6] n, the number of fields to set
  ARGV[7 .. 6+2n]  field, value pairs to set
  ARGV[7+2n ..]    fields to delete

  Returns  1 committed
          -1 this activation no longer owns the grain (nothing written)
          -2 the message's lock is not held with this token (nothing written)
]]
local token = ARGV[3]
local dir = redis.call('HMGET', KEYS[1], 'silo', 'epoch')
if dir[1] ~= ARGV[1] or dir[2] ~= ARGV[2] then
  if token ~= '' and redis.call('GET', KEYS[3]) == token then
    redis.call('DEL', KEYS[3])
  end
  return -1
end
if token ~= '' and redis.call('GET', KEYS[3]) ~= token then
  return -2
end
local n = tonumber(ARGV[6])
if n > 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 7, 6 + 2 * n))
end
if #ARGV >= 7 + 2 * n then
  redis.call('HDEL', KEYS[2], unpack(ARGV, 7 + 2 * n, #ARGV))
end
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call('SET', KEYS[4], ARGV[5], 'PX', keep)
end
return 1
