--[[
  The state of one job, checked in BullMQ's order (getStateV2).

  Input:
    KEYS[1] meta (unused; keeps the script on the queue's slot)
    ARGV[1] job key prefix
    ARGV[2] jobId
  Output:
    completed | failed | delayed | prioritized | active | waiting |
    waiting-children | unknown
]]
local rcall = redis.call
local prefix, jobId = ARGV[1], ARGV[2]
for _, state in ipairs({ "completed", "failed", "delayed", "prioritized" }) do
  if rcall("ZSCORE", prefix .. state, jobId) then
    return state
  end
end
if rcall("LPOS", prefix .. "active", jobId) then
  return "active"
end
if rcall("LPOS", prefix .. "wait", jobId) or rcall("LPOS", prefix .. "paused", jobId) then
  return "waiting"
end
if rcall("ZSCORE", prefix .. "waiting-children", jobId) then
  return "waiting-children"
end
return "unknown"
