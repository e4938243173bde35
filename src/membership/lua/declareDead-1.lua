--[[
  Declares a silo dead when its last heartbeat (Redis server time) is older than the limit.
  Atomic, so exactly one monitor wins the declaration and takes the silo's grains over.

  KEYS[1] the silo's membership record

  ARGV[1] silence limit in ms

  Returns 1 declared dead now, 0 alive (or already dead, or left)
]]
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'joining' and status ~= 'active' and status ~= 'stopping' then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- A heartbeat that is not a number was not written by a silo: as good as none.
local last = tonumber(redis.call('HGET', KEYS[1], 'heartbeatAt') or '0') or 0
if now - last <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'dead', 'deadAt', now)
return 1
