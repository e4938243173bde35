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

  The acknowledgements queued behind this script in the same MULTI present the commit's token,
  which only this script, when it commits, puts into the messages' locks: should it not run at
  all (refused, or not loaded in Redis), they find the take's token and acknowledge nothing.

  An event-sourced grain's events are appended to its journal (a stream whose entry ids are
  `0-<seq>`) in the same step, first among the writes, each right after the one before: the
  journal must end at the event the activation last committed (`prev`), or nothing is written.
  A snapshot is written as state fields; with it, the journal may be trimmed below an event.

  A variable number of keys (the caller passes the count first):
  KEYS[1]              the grain's directory entry
  KEYS[2]              the grain's state hash
  KEYS[3]              the grain's outbox (a list)
  KEYS[4]              the grain's record of the last message seen from each sending grain (a hash)
  KEYS[5]              the grain's journal (a stream; untouched unless e > 0 or trim > 0)
  KEYS[6 .. 5+L]       the lock keys of the batch's messages (none for a commit outside a message)
  KEYS[6+L .. 5+2L]    the job keys of the same messages, in the same order
  KEYS[6+2L ..]        idempotency records to write, one per message that carries a key

  ARGV[1] silo id
  ARGV[2] activation epoch
  ARGV[3] the messages' lock token ('' when L is 0)
  ARGV[4] L, the number of messages
  ARGV[5] n, the number of state fields to set
  ARGV[6] o, the number of outbox entries to append
  ARGV[7] s, the number of senders whose last message to record
  ARGV[8] e, the number of events to append to the journal
  ARGV[9] prev, the sequence number of the journal's last event (the events get prev+1 .. prev+e)
  ARGV[10] trim: remove the journal's events below this sequence number (0: none)
  ARGV[11] the commit's token ('' when L is 0): the messages' locks hold it once this commits
  ARGV[12] how many commits this activation has made so far (the directory entry counts them)
  ARGV[13] p, the number of replies to publish once committed
  then, per idempotency record: how long to keep it (whole ms, > 0), the outcome returned to duplicates
  then, per event: its version (whole, >= 1), the event, its correlation id, its time (whole ms)
  then o outbox entries
  then s sender, last-message pairs
  then p channel, message pairs: replies to `ask` callers, published only when the commit is
       written (on one Redis: a PUBLISH from a script of a Redis Cluster node would have to reach a
       channel in another slot)
  then n field, value pairs to set
  then the fields to delete

  Returns  1 committed
          -1 this activation no longer owns the grain (nothing written)
          -2 a message's lock is not held with this token (nothing written)
          -3 a message no longer exists (nothing written)
          -4 malformed arguments (nothing written)
          -5 Redis refused the first write, e.g. out of memory (nothing written)
          -6 the journal does not end at event prev (nothing written)
          -7 the directory entry counts fewer or more commits of this activation than it made: Redis
             lost some of them (a failover promoted a replica that lacked them), so the
             activation's memory is ahead of Redis (nothing written)
]]
local token = ARGV[3]
local locks = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local o = tonumber(ARGV[6])
local s = tonumber(ARGV[7])
local e = tonumber(ARGV[8])
local prev = tonumber(ARGV[9])
local trim = tonumber(ARGV[10])
local sealed = ARGV[11]
local made = tonumber(ARGV[12])
local p = tonumber(ARGV[13])

local function wholeNumber(value, min)
  return value ~= nil and value == math.floor(value) and value >= min and value < 2 ^ 53
end

local function dropOwnLocks()
  if not wholeNumber(locks, 0) or #KEYS < 5 + locks then return end
  for i = 6, 5 + locks do
    local holder = redis.call('GET', KEYS[i])
    if holder == token or (sealed ~= nil and sealed ~= '' and holder == sealed) then
      redis.call('DEL', KEYS[i])
    end
  end
end

if not wholeNumber(locks, 0) or not wholeNumber(n, 0) or not wholeNumber(o, 0) or not wholeNumber(s, 0)
  or not wholeNumber(e, 0) or not wholeNumber(prev, 0) or not wholeNumber(made, 0) or not wholeNumber(p, 0) or not wholeNumber(trim, 0) or trim > prev + e
  or #KEYS < 5 + 2 * locks or sealed == nil or (locks > 0 and (sealed == '' or sealed == token)) then
  dropOwnLocks()
  return -4
end
local records = #KEYS - 5 - 2 * locks
local events = 14 + 2 * records
local entries = events + 4 * e
local senders = entries + o
local replies = senders + 2 * s
local first = replies + 2 * p
if #ARGV < first - 1 + 2 * n then
  dropOwnLocks()
  return -4
end
for r = 1, records do
  if not wholeNumber(tonumber(ARGV[12 + 2 * r]), 1) then
    dropOwnLocks()
    return -4
  end
end
for i = 0, e - 1 do
  if not wholeNumber(tonumber(ARGV[events + 4 * i]), 1) or not wholeNumber(tonumber(ARGV[events + 4 * i + 3]), 0) then
    dropOwnLocks()
    return -4
  end
end

local dir = redis.call('HMGET', KEYS[1], 'silo', 'epoch', 'commits')
if dir[1] ~= ARGV[1] or dir[2] ~= ARGV[2] then
  dropOwnLocks()
  return -1
end
if tonumber(dir[3] or '0') ~= made then
  dropOwnLocks()
  return -7
end
for i = 6, 5 + locks do
  if redis.call('GET', KEYS[i]) ~= token then
    dropOwnLocks()
    return -2
  end
  if redis.call('EXISTS', KEYS[i + locks]) == 0 then
    dropOwnLocks()
    return -3
  end
end
if e > 0 then
  -- The events follow the journal's last one (a trimmed journal may be empty: then XADD itself
  -- refuses an id at or below its last, as the first write, so nothing is written either).
  local read, top = pcall(redis.call, 'XREVRANGE', KEYS[5], '+', '-', 'COUNT', 1)
  if not read or (#top > 0 and top[1][1] ~= string.format('0-%d', prev)) then
    dropOwnLocks()
    return -6
  end
end

-- Only the first write can still be refused (Redis checks maxmemory there, not after a script
-- has written): then nothing was written, and dropping the locks keeps the acknowledgements out.
local written = pcall(function()
  for i = 6, 5 + locks do
    redis.call('SET', KEYS[i], sealed, 'KEEPTTL')
  end
  for i = 0, e - 1 do
    local at = events + 4 * i
    redis.call('XADD', KEYS[5], string.format('0-%d', prev + 1 + i),
      'v', ARGV[at], 'e', ARGV[at + 1], 'c', ARGV[at + 2], 't', ARGV[at + 3])
  end
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
    redis.call('SET', KEYS[5 + 2 * locks + r], ARGV[13 + 2 * r], 'PX', ARGV[12 + 2 * r])
  end
  if trim > 0 then
    redis.call('XTRIM', KEYS[5], 'MINID', string.format('0-%d', trim))
  end
  redis.call('HINCRBY', KEYS[1], 'commits', 1)
end)
if not written then
  dropOwnLocks()
  return -5
end
for i = 0, p - 1 do
  redis.call('PUBLISH', ARGV[replies + 2 * i], ARGV[replies + 2 * i + 1])
end
return 1
