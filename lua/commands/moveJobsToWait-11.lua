--[[
  Moves up to `count` jobs from completed, failed or delayed back to `wait`
  (BullMQ's Queue.retryJobs and Queue.promoteJobs), clearing the result of
  finished jobs and emitting `waiting` with the previous state.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    the state's sorted set
    ARGV[1]     job key prefix
    ARGV[2]     count
    ARGV[3]     only jobs with a score up to this (ms; "+inf" for all)
    ARGV[4]     previous state: completed | failed | delayed
  Output:
    1 more jobs may remain, 0 done
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/isPausedOrMaxed"
--- @include "includes/markReady"
--- @include "includes/maxEvents"
local k = queueKeys()
local prefix = ARGV[1]
local count = tonumber(ARGV[2])
local prev = ARGV[4]
local ids = rcall("ZRANGEBYSCORE", KEYS[11], 0, ARGV[3], "LIMIT", 0, count)
if #ids > 0 then
  local resultField = nil
  if prev == "failed" then
    resultField = "failedReason"
  elseif prev == "completed" then
    resultField = "returnvalue"
  end
  local maxLen = maxEvents(k.meta)
  for _, jobId in ipairs(ids) do
    local jobKey = prefix .. jobId
    if resultField then
      rcall("HDEL", jobKey, "finishedOn", "processedOn", resultField)
    else
      rcall("HSET", jobKey, "delay", 0)
    end
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", jobId, "prev", prev)
  end
  for i = 1, #ids, 7000 do
    local last = math.min(i + 6999, #ids)
    rcall("ZREM", KEYS[11], unpack(ids, i, last))
    rcall("LPUSH", k.wait, unpack(ids, i, last))
  end
  markReady(k.marker, isPausedOrMaxed(k.meta, k.active))
end
if #ids >= count then
  return 1
end
return 0
