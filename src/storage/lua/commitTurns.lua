--[[
  Commits the state changes of a batch of turns, fenced: only the activation that owns the grain
  (silo + epoch), and that still holds the BullMQ lock of every message in the batch, may write.
  It runs in one MULTI with BullMQ's moveToFinished for each of those messages, so the state and
  the acknowledgements land together. When the commit is refused, every lock this activation still
  holds in the batch is dropped, so the acknowledgements queued after it fail too and the whole
  batch is processed again, in order, by the rightful owner.

  A variable number of keys (the caller passes the count first):
  KEYS[1]              the grain's directory entry
  KEYS[2]              the grain's state hash
  KEYS[3 .. 2+L]       the lock keys of the batch's messages (none for a commit outside a message)
  KEYS[3+L ..]         idempotency records to write, one per message that carries a key

  ARGV[1] silo id
  ARGV[2] activation epoch
  ARGV[3] the messages' lock token ('' when L is 0)
  ARGV[4] L, the number of lock keys
  ARGV[5] n, the number of fields to set
  then, per idempotency record: how long to keep it (ms), the outcome returned to duplicates
  then n field, value pairs to set
  then the fields to delete

  Returns  1 committed
          -1 this activation no longer owns the grain (nothing written)
          -2 a message's lock is not held with this token (nothing written)
]]
local token = ARGV[3]
local locks = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local records = #KEYS - 2 - locks

local function dropOwnLocks()
  for i = 3, 2 + locks do
    if redis.call('GET', KEYS[i]) == token then
      redis.call('DEL', KEYS[i])
    end
  end
end

local dir = redis.call('HMGET', KEYS[1], 'silo', 'epoch')
if dir[1] ~= ARGV[1] or dir[2] ~= ARGV[2] then
  dropOwnLocks()
  return -1
end
for i = 3, 2 + locks do
  if redis.call('GET', KEYS[i]) ~= token then
    dropOwnLocks()
    return -2
  end
end

local first = 6 + 2 * records
if n > 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, first, first + 2 * n - 1))
end
if #ARGV >= first + 2 * n then
  redis.call('HDEL', KEYS[2], unpack(ARGV, first + 2 * n, #ARGV))
end
for r = 1, records do
  redis.call('SET', KEYS[2 + locks + r], ARGV[5 + 2 * r], 'PX', ARGV[4 + 2 * r])
end
return 1
