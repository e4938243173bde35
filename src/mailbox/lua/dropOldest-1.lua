--[[
  Takes the oldest waiting messages past a bounded mailbox's depth out of its waiting list, in one
  step: concurrent senders of a `drop-oldest` mailbox each drop what is past the bound when they
  run, so together they drop exactly the overflow, and each message once.

  KEYS[1] the mailbox's wait list (BullMQ adds on the left and takes from the right: oldest last)

  ARGV[1] maxDepth: how many waiting messages stay

  Returns the ids taken out, oldest first (their job hashes are left for the caller to read and
  remove).
]]
local maxDepth = tonumber(ARGV[1])
local depth = redis.call('LLEN', KEYS[1])
if depth <= maxDepth then return {} end
local dropped = redis.call('LRANGE', KEYS[1], maxDepth, -1)
redis.call('LTRIM', KEYS[1], 0, maxDepth - 1)
local oldestFirst = {}
for i = #dropped, 1, -1 do oldestFirst[#oldestFirst + 1] = dropped[i] end
return oldestFirst
