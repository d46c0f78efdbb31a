-- The seed's design without HTTP: atomic check-and-increment of a period counter.
-- KEYS[1] counter, ARGV[1] limit, ARGV[2] quantity. Returns {allowed, remaining}.
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
local q = tonumber(ARGV[2])
if used + q > limit then return {0, limit - used} end
redis.call('INCRBY', KEYS[1], q)
return {1, limit - used - q}
