--[[
  Commits the state changes of a batch of turns, fenced: only the activation that owns the grain
  (silo + epoch), and that still holds the BullMQ lock of every message in the batch, may write.
  It runs in one MULTI with BullMQ's moveToFinished for each of those messages, so the state and
  the acknowledgements land together. When the commit is refused, every lock this activation still
  holds in the batch is dropped, so the acknowledgements queued after it fail too and the whole
  batch is processed again, in order, by the rightful owner.

  The turns' effects on the rest of the cluster (messages to other grains, publishes, reminders,
  subscriptions) are appended to the grain's outbox in the same step, and the last message seen
  from each sending grain is recorded for deduplication: a turn's effects exist exactly when its
  state does.

  All or nothing: everything that could make a write fail (the fence, each lock, each message
  still existing, every number) is checked before the first write. A refusal writes nothing and
  drops the locks, so no acknowledgement in the same MULTI lands without the state it goes with.

  A variable number of keys (the caller passes the count first):
  KEYS[1]              the grain's directory entry
  KEYS[2]              the grain's state hash
  KEYS[3]              the grain's outbox (a list)
  KEYS[4]              the grain's record of the last message seen from each sending grain (a hash)
  KEYS[5 .. 4+L]       the lock keys of the batch's messages (none for a commit outside a message)
  KEYS[5+L .. 4+2L]    the job keys of the same messages, in the same order
  KEYS[5+2L ..]        idempotency records to write, one per message that carries a key

  ARGV[1] silo id
  ARGV[2] activation epoch
  ARGV[3] the messages' lock token ('' when L is 0)
  ARGV[4] L, the number of messages
  ARGV[5] n, the number of state fields to set
  ARGV[6] o, the number of outbox entries to append
  ARGV[7] s, the number of senders whose last message to record
  then, per idempotency record: how long to keep it (whole ms, > 0), the outcome returned to duplicates
  then o outbox entries
  then s sender, last-message pairs
  then n field, value pairs to set
  then the fields to delete

  Returns  1 committed
          -1 this activation no longer owns the grain (nothing written)
          -2 a message's lock is not held with this token (nothing written)
          -3 a message no longer exists (nothing written)
          -4 malformed arguments (nothing written)
          -5 Redis refused the first write, e.g. out of memory (nothing written)
]]
local token = ARGV[3]
local locks = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local o = tonumber(ARGV[6])
local s = tonumber(ARGV[7])

local function wholeNumber(value, min)
  return value ~= nil and value == math.floor(value) and value >= min and value < 2 ^ 53
end

local function dropOwnLocks()
  if not wholeNumber(locks, 0) or #KEYS < 4 + locks then return end
  for i = 5, 4 + locks do
    if redis.call('GET', KEYS[i]) == token then
      redis.call('DEL', KEYS[i])
    end
  end
end

if not wholeNumber(locks, 0) or not wholeNumber(n, 0) or not wholeNumber(o, 0) or not wholeNumber(s, 0) or #KEYS < 4 + 2 * locks then
  dropOwnLocks()
  return -4
end
local records = #KEYS - 4 - 2 * locks
local entries = 8 + 2 * records
local senders = entries + o
local first = senders + 2 * s
if #ARGV < first - 1 + 2 * n then
  dropOwnLocks()
  return -4
end
for r = 1, records do
  if not wholeNumber(tonumber(ARGV[6 + 2 * r]), 1) then
    dropOwnLocks()
    return -4
  end
end

local dir = redis.call('HMGET', KEYS[1], 'silo', 'epoch')
if dir[1] ~= ARGV[1] or dir[2] ~= ARGV[2] then
  dropOwnLocks()
  return -1
end
for i = 5, 4 + locks do
  if redis.call('GET', KEYS[i]) ~= token then
    dropOwnLocks()
    return -2
  end
  if redis.call('EXISTS', KEYS[i + locks]) == 0 then
    dropOwnLocks()
    return -3
  end
end

-- Only the first write can still be refused (Redis checks maxmemory there, not after a script
-- has written): then nothing was written, and dropping the locks keeps the acknowledgements out.
local written = pcall(function()
  if n > 0 then
    redis.call('HSET', KEYS[2], unpack(ARGV, first, first + 2 * n - 1))
  end
  if #ARGV >= first + 2 * n then
    redis.call('HDEL', KEYS[2], unpack(ARGV, first + 2 * n, #ARGV))
  end
  if o > 0 then
    redis.call('RPUSH', KEYS[3], unpack(ARGV, entries, entries + o - 1))
  end
  if s > 0 then
    redis.call('HSET', KEYS[4], unpack(ARGV, senders, senders + 2 * s - 1))
  end
  for r = 1, records do
    redis.call('SET', KEYS[4 + 2 * locks + r], ARGV[7 + 2 * r], 'PX', ARGV[6 + 2 * r])
  end
end)
if not written then
  dropOwnLocks()
  return -5
end
return 1
