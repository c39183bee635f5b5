--[[
  promoteDueJobs(k, prefix, now, pausedOrMaxed): moves delayed jobs that are
  due (at most 1000 per call) to `wait` or `prioritized`, resets their `delay`
  field and emits `waiting` with prev `delayed`.
]]
--- @include "enqueueReady"
--- @include "markReady"
local function promoteDueJobs(k, prefix, now, pausedOrMaxed)
  -- numbers go to Redis as text: it would format each with %.17g
  local due = rcall("ZRANGEBYSCORE", k.delayed, "0", string.format("%d", (now + 1) * 0x1000 - 1), "LIMIT", "0", "1000")
  if #due == 0 then
    return
  end
  rcall("ZREM", k.delayed, unpack(due))
  for _, jobId in ipairs(due) do
    local jobKey = prefix .. jobId
    local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
    enqueueReady(k, jobId, priority, "LPUSH")
    rcall("XADD", k.events, "*", "event", "waiting", "jobId", jobId, "prev", "delayed")
    rcall("HSET", jobKey, "delay", 0)
  end
  markReady(k.marker, pausedOrMaxed)
end
