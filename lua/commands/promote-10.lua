--[[
  Makes a delayed job ready now (BullMQ's promote).

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    ARGV[1] job key prefix
    ARGV[2] jobId
  Output:
    0 ok, -3 job not delayed
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/enqueueReady"
--- @include "includes/isPausedOrMaxed"
--- @include "includes/markReady"
local k = queueKeys()
local jobId = ARGV[2]
if rcall("ZREM", k.delayed, jobId) ~= 1 then
  return -3
end
local jobKey = ARGV[1] .. jobId
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
enqueueReady(k, jobId, priority, "LPUSH")
markReady(k.marker, isPausedOrMaxed(k.meta, k.active))
rcall("XADD", k.events, "*", "event", "waiting", "jobId", jobId, "prev", "delayed")
rcall("HSET", jobKey, "delay", 0)
return 0
