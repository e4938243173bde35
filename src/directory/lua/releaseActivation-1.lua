--[[
  Releases a grain's directory entry, only if it still names this activation (silo and epoch).
  The epoch counter stays, so the next claim gets a higher one.

  KEYS[1] the grain's directory entry

  ARGV[1] silo id
  ARGV[2] epoch of the activation being released

  Returns 1 released, 0 the entry names another activation (nothing changed)
]]
if redis.call('HGET', KEYS[1], 'silo') == ARGV[1] and redis.call('HGET', KEYS[1], 'epoch') == ARGV[2] then
  redis.call('HDEL', KEYS[1], 'silo', 'since', 'commits')
  return 1
end
return 0
