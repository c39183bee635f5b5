--[[
  Removes jobs of one state older than a grace period (BullMQ's clean).
  The age of a finished job is its finishedOn; of a delayed job processedOn
  or timestamp; of a waiting or active job finishedOn, processedOn or
  timestamp. Locked active jobs and scheduler iterations are kept.

  Input:
    KEYS[1] the state's key (list or sorted set)
    KEYS[2] events
    KEYS[3] repeat
    ARGV[1] job key prefix
    ARGV[2] cutoff timestamp (ms): older jobs go
    ARGV[3] limit (0 = no limit)
    ARGV[4] state: completed | failed | delayed | prioritized | wait | paused | active
  Output:
    ids removed; emits `cleaned` with their count
]]
local rcall = redis.call
--- @include "includes/isSchedulerJob"
--- @include "includes/removeJobKeys"
local prefix = ARGV[1]
local cutoff = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local state = ARGV[4]
local isList = state == "wait" or state == "paused" or state == "active"
local ageFields = { "finishedOn", "processedOn", "timestamp" }
if state == "delayed" then
  ageFields = { "processedOn", "timestamp" }
elseif state == "prioritized" then
  ageFields = { "timestamp" }
end

local ids
if isList then
  if limit > 0 then
    ids = rcall("LRANGE", KEYS[1], -limit, -1)
  else
    ids = rcall("LRANGE", KEYS[1], 0, -1)
  end
elseif state == "completed" or state == "failed" then
  ids = rcall("ZRANGEBYSCORE", KEYS[1], "-inf", cutoff)
else
  ids = rcall("ZRANGE", KEYS[1], 0, -1)
end

local removed = {}
for _, jobId in ipairs(ids) do
  if limit > 0 and #removed >= limit then
    break
  end
  local jobKey = prefix .. jobId
  local eligible = not isSchedulerJob(jobId, jobKey, KEYS[3])
  if eligible and state == "active" then
    eligible = rcall("EXISTS", jobKey .. ":lock") == 0
  end
  if eligible and state ~= "completed" and state ~= "failed" then
    local ts
    for _, v in ipairs(rcall("HMGET", jobKey, unpack(ageFields))) do
      if v then
        ts = tonumber(v)
        break
      end
    end
    eligible = (not ts) or ts <= cutoff
  end
  if eligible then
    local dedupId = rcall("HGET", jobKey, "deid")
    if dedupId and rcall("GET", prefix .. "de:" .. dedupId) == jobId then
      rcall("DEL", prefix .. "de:" .. dedupId, prefix .. "dn:" .. dedupId)
    end
    removeJobKeys(jobKey)
    if isList then
      rcall("LREM", KEYS[1], 1, jobId)
    else
      rcall("ZREM", KEYS[1], jobId)
    end
    removed[#removed + 1] = jobId
  end
end
rcall("XADD", KEYS[2], "*", "event", "cleaned", "count", #removed)
return removed
