--[[
  Claims a grain for a new activation on this silo, unless another silo holds it.
  Every successful claim increments the grain's epoch, so epochs are never reused and a commit
  can be fenced by comparing epochs.

  KEYS[1] the grain's directory entry (hash: silo, epoch, since, commits)

  ARGV[1] claiming silo id
  ARGV[2] a silo id whose hold may be superseded because it is known to be gone, or ''
  ARGV[3] now, ms since epoch

  Returns {1, epoch}             claimed
          {0, ownerSilo, epoch}  held by another silo
]]
local owner = redis.call('HGET', KEYS[1], 'silo')
if owner and owner ~= ARGV[2] then
  return {0, owner, redis.call('HGET', KEYS[1], 'epoch') or '0'}
end
-- A grain's first epoch comes from the server clock, and so does one after its entry was lost
-- (deleted, flushed) or is not a whole number (not written by us): higher than any epoch the grain
-- had before, so epochs stay increasing; receivers of the grain's messages rely on it.
local stored = redis.call('HGET', KEYS[1], 'epoch')
local previous = tonumber(stored or 'none')
local epoch
if previous ~= nil and previous == math.floor(previous) and previous >= 0 and previous < 2 ^ 53 then
  epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
else
  local t = redis.call('TIME')
  epoch = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[1], 'epoch', epoch)
end
-- The new activation has made no commit yet (commitTurns.lua counts them, to notice lost ones).
redis.call('HSET', KEYS[1], 'silo', ARGV[1], 'since', ARGV[3], 'commits', 0)
return {1, tostring(epoch)}
