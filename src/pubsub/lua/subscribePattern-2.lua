--[[
  Adds a subscriber to a wildcard pattern and lists the pattern in its bucket.

  KEYS[1] the bucket's pattern list (hash: pattern -> 1)
  KEYS[2] the pattern's subscribers (set)

  ARGV[1] subscriber ("<grain tag> <method>")
  ARGV[2] pattern
]]
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], 1)
return 1
