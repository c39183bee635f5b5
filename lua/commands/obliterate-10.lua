--[[
  Deletes a paused queue with all its jobs, in slices of at most `count`
  jobs per call (BullMQ's obliterate); call again while it returns 1.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    ARGV[1]     job key prefix (also the queue's key prefix)
    ARGV[2]     count: jobs to delete in this call
    ARGV[3]     "1" to delete active jobs too
  Output:
    0 done, 1 more to do, -1 queue not paused, -2 active jobs and no force
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/removeJobKeys"
local k = queueKeys()
local prefix = ARGV[1]
local budget = tonumber(ARGV[2])
if rcall("HEXISTS", k.meta, "paused") ~= 1 then
  return -1
end
local active = rcall("LRANGE", k.active, 0, budget - 1)
if #active > 0 and ARGV[3] ~= "1" then
  return -2
end

local function dropJobs(ids)
  for _, jobId in ipairs(ids) do
    local jobKey = prefix .. jobId
    rcall("DEL", jobKey .. ":lock")
    local dedupId = rcall("HGET", jobKey, "deid")
    if dedupId then
      rcall("DEL", prefix .. "de:" .. dedupId, prefix .. "dn:" .. dedupId)
    end
    removeJobKeys(jobKey)
  end
  budget = budget - #ids
end

dropJobs(active)
rcall("LTRIM", k.active, #active, -1)
if budget <= 0 then
  return 1
end

local repeatKey = prefix .. "repeat"
for _, state in ipairs({ "delayed", "repeat", "completed", "wait", "paused", "prioritized",
  "failed", "waiting-children" }) do
  local key = prefix .. state
  local isList = state == "wait" or state == "paused"
  local ids
  if isList then
    ids = rcall("LRANGE", key, 0, budget - 1)
  else
    ids = rcall("ZRANGE", key, 0, budget - 1)
  end
  if #ids > 0 then
    if key == repeatKey then
      for _, schedulerId in ipairs(ids) do
        rcall("DEL", repeatKey .. ":" .. schedulerId)
      end
      budget = budget - #ids
    else
      dropJobs(ids)
    end
    if isList then
      rcall("LTRIM", key, #ids, -1)
    else
      for i = 1, #ids, 7000 do
        rcall("ZREM", key, unpack(ids, i, math.min(i + 6999, #ids)))
      end
    end
    if budget <= 0 then
      return 1
    end
  end
end

rcall("DEL", k.events, prefix .. "delay", prefix .. "stalled-check", k.stalled, prefix .. "id",
  k.pc, k.marker, k.meta, k.limiter, prefix .. "metrics:completed", prefix .. "metrics:completed:data",
  prefix .. "metrics:failed", prefix .. "metrics:failed:data")
return 0
