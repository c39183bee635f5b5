--[[
  Sets a job's progress and emits `progress` (BullMQ's updateProgress).

  Input:
    KEYS[1] job key
    KEYS[2] events
    KEYS[3] meta
    ARGV[1] jobId
    ARGV[2] progress JSON
    ARGV[3] "1" = also publish {"type":"progress","progress":<JSON>} on
            `job:<jobId>` (a worker with publish_results), "" = do not
  Output:
    0 ok, -1 missing job
]]
local rcall = redis.call
--- @include "includes/maxEvents"
if rcall("EXISTS", KEYS[1]) == 0 then
  return -1
end
if ARGV[3] == "1" then
  rcall("PUBLISH", "job:" .. ARGV[1], '{"type":"progress","progress":' .. ARGV[2] .. '}')
end
rcall("HSET", KEYS[1], "progress", ARGV[2])
rcall("XADD", KEYS[2], "MAXLEN", "~", maxEvents(KEYS[3]), "*", "event", "progress",
  "jobId", ARGV[1], "data", ARGV[2])
return 0
