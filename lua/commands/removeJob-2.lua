--[[
  Removes one job and its keys from any state but active-and-locked
  (BullMQ's Job.remove without children).

  Input:
    KEYS[1] meta
    KEYS[2] repeat
    ARGV[1] job key prefix
    ARGV[2] jobId
  Output:
    1 removed, 0 locked by a worker (or missing), -8 the current job of a scheduler
]]
local rcall = redis.call
--- @include "includes/isSchedulerJob"
--- @include "includes/maxEvents"
--- @include "includes/removeJob"
local prefix, jobId = ARGV[1], ARGV[2]
local jobKey = prefix .. jobId
if isSchedulerJob(jobId, jobKey, KEYS[2]) then
  return -8
end
if rcall("EXISTS", jobKey .. ":lock") == 1 then
  return 0
end
if removeJob(prefix, jobId, maxEvents(KEYS[1])) then
  return 1
end
return 0
