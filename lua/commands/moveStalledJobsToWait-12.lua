--[[
  The stalled-job sweep BullMQ workers run every stalledInterval, with the
  same mark-and-sweep over the `stalled` set:
    - at most once per interval across all workers (`stalled-check` key);
    - sweep: every id marked last time whose lock is gone is moved from
      `active` back to the tail of `wait` (next to run), `stc` + 1, events
      `waiting` (prev active) and `stalled`; past maxStalledCount the job gets
      `defa` so the next worker fails it (scheduler jobs are only requeued);
    - mark: every id now in `active` becomes a candidate.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    stalled-check
    KEYS[12]    repeat (job schedulers)
    ARGV[1]     maxStalledCount
    ARGV[2]     job key prefix
    ARGV[3]     now (ms)
    ARGV[4]     stalled interval (ms)
  Output:
    ids of the jobs found stalled
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/isPausedOrMaxed"
--- @include "includes/maxEvents"

local k = queueKeys()
if rcall("EXISTS", KEYS[11]) == 1 then
  return {}
end
rcall("SET", KEYS[11], ARGV[3], "PX", ARGV[4])
rcall("XTRIM", k.events, "MAXLEN", "~", maxEvents(k.meta))

local maxStalled = tonumber(ARGV[1])
local prefix = ARGV[2]
local stalled = {}
local candidates = rcall("SMEMBERS", k.stalled)
if #candidates > 0 then
  rcall("DEL", k.stalled)
  for _, jobId in ipairs(candidates) do
    if string.sub(jobId, 1, 2) == "0:" then
      rcall("LREM", k.active, 1, jobId)
    else
      local jobKey = prefix .. jobId
      if rcall("EXISTS", jobKey .. ":lock") == 0 and rcall("LREM", k.active, 1, jobId) > 0 then
        local count = rcall("HINCRBY", jobKey, "stc", 1)
        local schedulerId = rcall("HGET", jobKey, "rjk")
        local fromScheduler = schedulerId and
          (rcall("EXISTS", KEYS[12] .. ":" .. schedulerId) == 1 or
           rcall("ZSCORE", KEYS[12], schedulerId) ~= false)
        if count > maxStalled and not fromScheduler then
          rcall("HSET", jobKey, "defa", "job stalled more than allowable limit")
        end
        rcall("RPUSH", k.wait, jobId)
        if not isPausedOrMaxed(k.meta, k.active) then
          rcall("ZADD", k.marker, "0", "0")
        end
        rcall("XADD", k.events, "*", "event", "waiting", "jobId", jobId, "prev", "active")
        rcall("XADD", k.events, "*", "event", "stalled", "jobId", jobId)
        stalled[#stalled + 1] = jobId
      end
    end
  end
end

local active = rcall("LRANGE", k.active, 0, -1)
for i = 1, #active, 7000 do
  rcall("SADD", k.stalled, unpack(active, i, math.min(i + 6999, #active)))
end
return stalled
