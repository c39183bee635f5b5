--[[
  How long until the queue's rate limiter lets another job start, as
  BullMQ 6's `Queue.getRateLimitTtl` reads it: against `maxJobs` when given,
  else against the global limit in meta (`max`); with neither, the
  limiter key's own PTTL.

  Input:
    KEYS[1] limiter
    KEYS[2] meta
    ARGV[1] maxJobs ("0" = none given)
  Output:
    ms (0 = a job may start now; -2/-1 as PTTL for no limiter key)
]]
local rcall = redis.call
--- @include "includes/rateLimitTtl"
local maxJobs = tonumber(ARGV[1])
if maxJobs == 0 then
  maxJobs = tonumber(rcall("HGET", KEYS[2], "max"))
  if not maxJobs then
    return rcall("PTTL", KEYS[1])
  end
end
return rateLimitTtl(maxJobs, KEYS[1])
