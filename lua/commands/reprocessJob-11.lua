--[[
  Sends a completed or failed job back to run again (BullMQ's Job.retry):
  clears finishedOn, processedOn and the result field, optionally resets the
  attempt counters, requeues it and emits `waiting` with the previous state.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    the job's state set (completed or failed)
    ARGV[1] job key prefix
    ARGV[2] jobId
    ARGV[3] previous state: completed | failed
    ARGV[4] push command LPUSH | RPUSH (lifo)
    ARGV[5] reset attemptsMade ("1")
    ARGV[6] reset attemptsStarted ("1")
  Output:
    1 ok, -1 missing job, -3 job not in that state
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/enqueueReady"
--- @include "includes/isPausedOrMaxed"
--- @include "includes/markReady"
--- @include "includes/maxEvents"
local k = queueKeys()
local jobId = ARGV[2]
local jobKey = ARGV[1] .. jobId
if rcall("EXISTS", jobKey) == 0 then
  return -1
end
if rcall("ZREM", KEYS[11], jobId) ~= 1 then
  return -3
end
local field = "returnvalue"
if ARGV[3] == "failed" then
  field = "failedReason"
end
local drop = { "finishedOn", "processedOn", field }
if ARGV[5] == "1" then
  drop[#drop + 1] = "atm"
end
if ARGV[6] == "1" then
  drop[#drop + 1] = "ats"
end
rcall("HDEL", jobKey, unpack(drop))
local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
enqueueReady(k, jobId, priority, ARGV[4])
markReady(k.marker, isPausedOrMaxed(k.meta, k.active))
local parentKey = rcall("HGET", jobKey, "parentKey")
if parentKey and rcall("EXISTS", parentKey) == 1 then
  local back
  if ARGV[3] == "failed" then
    back = rcall("ZREM", parentKey .. ":unsuccessful", jobKey) == 1 or
      rcall("HDEL", parentKey .. ":failed", jobKey) == 1
  else
    back = rcall("HDEL", parentKey .. ":processed", jobKey) == 1
  end
  if back then
    rcall("SADD", parentKey .. ":dependencies", jobKey)
  end
end
rcall("XADD", k.events, "MAXLEN", "~", maxEvents(k.meta), "*", "event", "waiting",
  "jobId", jobId, "prev", ARGV[3])
return 1
