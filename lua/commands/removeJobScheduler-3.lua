--[[
  Removes a job scheduler and its pending iteration, as BullMQ 6's
  `Queue.removeJobScheduler` does: the delayed iteration goes (event
  `removed`, prev `delayed`), then the scheduler's entry and hash.

  Input:
    KEYS[1] repeat
    KEYS[2] delayed
    KEYS[3] events
    ARGV[1] scheduler id
    ARGV[2] job key prefix
  Output:
    1 removed, 0 no such scheduler
]]
local rcall = redis.call
--- @include "includes/removeJobKeys"
local schedulerId = ARGV[1]
local millis = rcall("ZSCORE", KEYS[1], schedulerId)
if millis then
  local jobId = "repeat:" .. schedulerId .. ":" .. millis
  if rcall("ZREM", KEYS[2], jobId) == 1 then
    removeJobKeys(ARGV[2] .. jobId)
    rcall("XADD", KEYS[3], "*", "event", "removed", "jobId", jobId, "prev", "delayed")
  end
end
if rcall("ZREM", KEYS[1], schedulerId) == 1 then
  rcall("DEL", KEYS[1] .. ":" .. schedulerId)
  return 1
end
return 0
