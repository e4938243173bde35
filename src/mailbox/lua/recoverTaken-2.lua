--[[
  Puts the messages left taken in a grain's mailbox (by activations that crashed, stepped down or
  were fenced out) back at the head of the mailbox, in their order, once none of them is locked.

  Why not BullMQ's moveStalledJobsToWait: it reads the taken messages from a Redis set, whose
  order is not theirs (a set of numeric ids comes back sorted, so pushing them back one by one
  leaves the newest first). A batch of turns leaves several messages taken, and their order is
  the grain's order.

  KEYS[1] the mailbox's active list (BullMQ takes with RPOPLPUSH wait -> active: newest first)
  KEYS[2] the mailbox's wait list (taken from the right)
  ARGV[1] the mailbox's job key prefix (`<prefix>:<queue>:`)
  ARGV[2] '1' when no take is to be counted, the oldest's neither: the messages were handed back
          unstarted by a stopping activation, or the interrupted batch held several messages

  A crash counts a delivery attempt (BullMQ's `ats`, which every take increments) only against the
  oldest message put back, and only when it was alone in the batch the crash interrupted (the
  caller knows: see GrainMailbox.recoverTaken). The others may never have run, so their take is
  not counted; in a batch of several, any of them may have caused the crash, so none is charged.
  The owner then takes them one at a time, so a poison message among them is counted from its next
  crash on, alone, and its batch-mates are never charged with it.

  Returns {moved, locked}: how many messages went back, and how many are still locked (then
  nothing moves: a live holder may still acknowledge them, and order needs all of them back).
]]
local taken = redis.call('LRANGE', KEYS[1], 0, -1)
local locked = 0
for _, jobId in ipairs(taken) do
  if redis.call('EXISTS', ARGV[1] .. jobId .. ':lock') == 1 then
    locked = locked + 1
  end
end
if locked > 0 or #taken == 0 then
  return {0, locked}
end
-- Newest first onto the end taken next: the oldest (the last) ends up at the head.
for i, jobId in ipairs(taken) do
  redis.call('RPUSH', KEYS[2], jobId)
  local jobKey = ARGV[1] .. jobId
  if (i < #taken or ARGV[2] == '1') and tonumber(redis.call('HGET', jobKey, 'ats') or '0') > 0 then
    redis.call('HINCRBY', jobKey, 'ats', -1)
  end
end
redis.call('DEL', KEYS[1])
return {#taken, 0}
