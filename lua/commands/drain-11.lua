--[[
  Removes every job that waits to run: `wait`, `prioritized` and, when asked,
  `delayed`; never active or finished jobs, nor the pending iteration of a job
  scheduler (BullMQ's drain). No events, as in BullMQ.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    repeat
    ARGV[1]     job key prefix
    ARGV[2]     "1" to drain delayed jobs too
  Output:
    number of jobs removed
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/removeJobKeys"
local k = queueKeys()
local prefix = ARGV[1]
local spare = {}
local schedulers = rcall("ZRANGE", KEYS[11], 0, -1, "WITHSCORES")
for i = 1, #schedulers, 2 do
  spare["repeat:" .. schedulers[i] .. ":" .. schedulers[i + 1]] = true
end

local removed = 0
local function drop(ids)
  local kept = {}
  for _, jobId in ipairs(ids) do
    if spare[jobId] then
      kept[#kept + 1] = jobId
    else
      local jobKey = prefix .. jobId
      local dedupId = rcall("HGET", jobKey, "deid")
      if dedupId and rcall("GET", prefix .. "de:" .. dedupId) == jobId then
        rcall("DEL", prefix .. "de:" .. dedupId, prefix .. "dn:" .. dedupId)
      end
      removeJobKeys(jobKey)
      removed = removed + 1
    end
  end
  return kept
end

local kept = drop(rcall("LRANGE", k.wait, 0, -1))
rcall("DEL", k.wait)
if #kept > 0 then
  rcall("RPUSH", k.wait, unpack(kept))
end
for _, setKey in ipairs({ k.prioritized, ARGV[2] == "1" and k.delayed or nil }) do
  local ids = rcall("ZRANGE", setKey, 0, -1)
  drop(ids)
  for _, jobId in ipairs(ids) do
    if not spare[jobId] then
      rcall("ZREM", setKey, jobId)
    end
  end
end
return removed
