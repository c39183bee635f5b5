--[[
  Gives a delayed job a new delay counted from now (BullMQ's changeDelay).

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    ARGV[1] job key prefix
    ARGV[2] jobId
    ARGV[3] delay ms
    ARGV[4] now (ms)
  Output:
    0 ok, -1 missing job, -3 job not delayed
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/delayedScore"
--- @include "includes/maxEvents"
--- @include "includes/refreshDelayMarker"
local k = queueKeys()
local jobId = ARGV[2]
local jobKey = ARGV[1] .. jobId
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
local delay = tonumber(ARGV[3])
local score, due = delayedScore(k.delayed, ARGV[4], delay)
if rcall("ZREM", k.delayed, jobId) ~= 1 then
  return -3
end
rcall("HSET", jobKey, "delay", delay)
rcall("ZADD", k.delayed, score, jobId)
rcall("XADD", k.events, "MAXLEN", "~", maxEvents(k.meta), "*", "event", "delayed",
  "jobId", jobId, "delay", due)
refreshDelayMarker(k.marker, k.delayed)
return 0
