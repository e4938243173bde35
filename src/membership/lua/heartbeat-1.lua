--[[
  Records a silo's heartbeat in Redis server time, unless the silo was declared dead or left:
  a silo that was silent too long learns it here, and never revives its record.

  KEYS[1] the silo's membership record

  ARGV[1] number of activations the silo holds
  ARGV[2] the silo's stats (JSON, for the dashboard), optional

  Returns 'ok', or the status that forbids the heartbeat ('dead', 'left', 'missing')
]]
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 'missing' end
if status == 'dead' or status == 'left' then return status end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'heartbeatAt', now, 'activations', ARGV[1])
if ARGV[2] then redis.call('HSET', KEYS[1], 'stats', ARGV[2]) end
return 'ok'
