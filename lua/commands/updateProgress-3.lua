--[[
  Sets a job's progress and emits `progress` (BullMQ's updateProgress).

  Input:
    KEYS[1] job key
    KEYS[2] events
    KEYS[3] meta
    ARGV[1] jobId
    ARGV[2] progress JSON
    ARGV[3] "1" = also publish {"type":"progress","jobId":..,
            "progress":<JSON>} on `job:<jobId>` (a worker with
            publish_results), "" = do not
    ARGV[4] a channel to publish it on as well ("" = none)
  Output:
    0 ok, -1 missing job
]]
local rcall = redis.call
--- @include "includes/maxEvents"
if rcall("EXISTS", KEYS[1]) == 0 then
  return -1
end
if ARGV[3] == "1" then
  local message = '{"type":"progress","jobId":' .. cjson.encode(ARGV[1]) .. ',"progress":' .. ARGV[2] .. '}'
  rcall("PUBLISH", "job:" .. ARGV[1], message)
  if ARGV[4] ~= "" then
    rcall("PUBLISH", ARGV[4], message)
  end
end
rcall("HSET", KEYS[1], "progress", ARGV[2])
rcall("XADD", KEYS[2], "MAXLEN", "~", maxEvents(KEYS[3]), "*", "event", "progress",
  "jobId", ARGV[1], "data", ARGV[2])
return 0
