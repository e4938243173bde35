--[[
  Removes what BullMQ leaves behind in a grain's mailbox once it holds no message at all, so a
  grain at rest keeps only its state and its directory entry: the events stream (which redgrain
  never reads), the job id counter, the marker and the queue's meta. A message added later makes
  them again (its job id counts from 1 again: no job of the mailbox is left to clash with).
  Nothing is removed while any message waits, runs, is delayed or kept as failed, or while the
  mailbox is paused.

  KEYS[1..6]  wait, active, paused, delayed, prioritized, failed
  KEYS[7..11] events, id, marker, meta, pc

  Returns 1 tidied, 0 left as it was
]]
for i = 1, 3 do
  if redis.call('LLEN', KEYS[i]) > 0 then return 0 end
end
for i = 4, 6 do
  if redis.call('ZCARD', KEYS[i]) > 0 then return 0 end
end
if redis.call('HEXISTS', KEYS[10], 'paused') == 1 then return 0 end
redis.call('DEL', KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11])
return 1
