--[[
  Changes a job's priority; a waiting or prioritized job moves to its new
  place (with lifo: the front of its priority band), as BullMQ's
  changePriority does. Jobs in other states only get the new field.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    ARGV[1] job key prefix
    ARGV[2] jobId
    ARGV[3] priority
    ARGV[4] lifo ("1" or "")
  Output:
    0 ok, -1 missing job
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/enqueueReady"
--- @include "includes/isPausedOrMaxed"
--- @include "includes/markReady"
local k = queueKeys()
local jobId = ARGV[2]
local jobKey = ARGV[1] .. jobId
local priority = tonumber(ARGV[3])
local lifo = ARGV[4] == "1"
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if rcall("ZREM", k.prioritized, jobId) > 0 or rcall("LREM", k.wait, -1, jobId) > 0 then
  if priority > 0 and lifo then
    rcall("ZADD", k.prioritized, priority * 0x100000000, jobId)
  else
    local pushCmd = "LPUSH"
    if lifo then
      pushCmd = "RPUSH"
    end
    enqueueReady(k, jobId, priority, pushCmd)
    markReady(k.marker, isPausedOrMaxed(k.meta, k.active))
  end
end
rcall("HSET", jobKey, "priority", priority)
return 0
