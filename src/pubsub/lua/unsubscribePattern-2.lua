--[[
  Removes a subscriber from a wildcard pattern; a pattern left without subscribers leaves its
  bucket, in the same step, so a concurrent subscribe cannot be lost.

  KEYS[1] the bucket's pattern list (hash: pattern -> 1)
  KEYS[2] the pattern's subscribers (set)

  ARGV[1] subscriber ("<grain tag> <method>")
  ARGV[2] pattern

  Returns 1 if the subscriber was removed, 0 if it was not subscribed.
]]
local removed = redis.call('SREM', KEYS[2], ARGV[1])
if redis.call('SCARD', KEYS[2]) == 0 then
  redis.call('HDEL', KEYS[1], ARGV[2])
end
return removed
