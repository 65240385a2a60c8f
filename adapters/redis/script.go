package apitokenredis

import "github.com/redis/go-redis/v9"

// slidingLog is the decision script: the sliding-window log of
// apitoken.MemoryLimiter, run atomically inside Redis on Redis's clock.
//
// KEYS[1] is the key's sorted set: one member per allowed request, scored
// with the request's time in microseconds of Redis's clock (TIME).
// ARGV[1] is the limit (> 0), ARGV[2] the window in microseconds, ARGV[3]
// "1" to count an allowed request (Allow) or "0" to only look (Peek).
//
// The script:
//   - reads TIME once (now);
//   - forgets the members at or before now-window and counts the rest, n
//     (Peek does this too: it is a write, so a probe with Peek notices a
//     replica that has become read-only);
//   - n < limit: allowed. Allow adds a member (unique: its time and the
//     count, with a suffix in the unlikely case that is taken) and makes
//     the key expire when that member leaves the window, so an idle key
//     disappears by itself. Reset is the oldest counted member's time plus
//     the window (now plus the window when there is none);
//   - n >= limit: refused, nothing is written. Reset is when n-limit+1
//     members have left the window: the time of the member at index
//     n-limit (0 unless the limit was lowered) plus the window.
//
// Peek writes nothing else, and never creates the key.
//
// It returns {allowed (1|0), current, remaining, reset (µs), now (µs)},
// where current is n after counting (limit+1 when refused) and remaining is
// limit-current (0 when refused).
//
// These are MemoryLimiter's decisions, except when Redis's clock steps back
// (or a failover lands on a replica whose clock is behind): MemoryLimiter
// judges a request that comes before its key's newest one at that newest
// time; the script judges it at its own time, so members stamped later
// still count until they leave the window. A step back can so delay
// allowed requests but never allows more. The expiry is only ever moved
// later (PEXPIRE GT), so that no member is dropped before it leaves the
// window; on Redis before 7.0, which lacks GT, a plain PEXPIRE is the
// fallback. Not looking up the newest member spares one command of the
// seven, about a sixth of the script's time.
//
// Reading TIME before writing needs effect replication (the script's
// writes, not the script, go to replicas and the AOF): the default since
// Redis 5 and the only mode since Redis 7. So the limiter needs Redis 5 or
// later.
const slidingLogSource = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local win = tonumber(ARGV[2])
local tm = redis.call('TIME')
local now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
local n = redis.call('ZCARD', key)
if n < limit then
	if ARGV[3] == '1' then
		n = n + 1
		local member = string.format('%.0f-%d', now, n)
		if redis.call('ZADD', key, 'NX', now, member) == 0 then
			local i = 1
			while redis.call('ZADD', key, 'NX', now, member .. '-' .. i) == 0 do
				i = i + 1
			end
		end
		local ttl = math.ceil(win / 1000)
		if n == 1 then
			redis.call('PEXPIRE', key, ttl)
			return {1, 1, limit - 1, now + win, now}
		end
		if type(redis.pcall('PEXPIRE', key, ttl, 'GT')) == 'table' then
			redis.call('PEXPIRE', key, ttl)
		end
	elseif n == 0 then
		return {1, 0, limit, now + win, now}
	end
	local o = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
	return {1, n, limit - n, tonumber(o[2]) + win, now}
end
local r = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
return {0, limit + 1, 0, tonumber(r[2]) + win, now}
`

// slidingLog runs with EVALSHA, falling back to EVAL (which loads it) when
// Redis answers NOSCRIPT: after a restart, a failover or SCRIPT FLUSH.
var slidingLog = redis.NewScript(slidingLogSource)
