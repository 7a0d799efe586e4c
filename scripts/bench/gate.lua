-- The gate benchmark's stand-in for one hot reserve, for redis-benchmark: one line, one
-- warehouse, the same reads and writes as Sources/HotStock/Scripts.swift's gate (answer check,
-- backlog check, hot flag, counter check, DECRBY, INCR token, HSET + PEXPIRE answer, XADD record).
-- KEYS: answer, token, holds stream, hot flag, counter. ARGV: id, digest, order, region, ttl, createdAt.
local answer = redis.call('HGET', KEYS[1], 'd')
if answer then
  if answer == ARGV[2] then return {'replay', redis.call('HGET', KEYS[1], 'a')} end
  return {'conflict'}
end
if redis.call('XLEN', KEYS[3]) >= 100000000 then return {'backlog'} end
if redis.call('GET', KEYS[4]) ~= '1' then return {'not_hot'} end
local left = tonumber(redis.call('GET', KEYS[5]) or '0')
if left < 1 then return {'short'} end
redis.call('DECRBY', KEYS[5], 1)
local n = redis.call('INCR', KEYS[2])
local stored = n .. '\031' .. ARGV[6] .. '\031' .. 'bench\030w\0301'
redis.call('HSET', KEYS[1], 'd', ARGV[2], 'a', stored)
redis.call('PEXPIRE', KEYS[1], 3600000)
redis.call('XADD', KEYS[3], '*', 'h', ARGV[1] .. '\031' .. ARGV[3] .. '\031' .. ARGV[4] .. '\031' .. ARGV[5] .. '\0310\031' .. stored)
return {'granted', stored}
