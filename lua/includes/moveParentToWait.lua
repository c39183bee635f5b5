--[[
  moveParentToWait(q, parentKey, parentId, now): a flow parent whose
  children are done becomes runnable in its own queue `q` (its queue key,
  e.g. "bull:P"): delayed when it has a delay, else `prioritized` or the
  tail of `wait`, with the event BullMQ emits for it.
]]
--- @include "isPausedOrMaxed"
--- @include "markReady"
--- @include "priorityScore"
--- @include "refreshDelayMarker"
local function moveParentToWait(q, parentKey, parentId, now)
  local attrs = rcall("HMGET", parentKey, "priority", "delay")
  local priority = tonumber(attrs[1]) or 0
  local delay = tonumber(attrs[2]) or 0
  if delay > 0 then
    local due = tonumber(now) + delay
    rcall("ZADD", q .. ":delayed", due * 0x1000, parentId)
    rcall("XADD", q .. ":events", "*", "event", "delayed", "jobId", parentId, "delay", due)
    refreshDelayMarker(q .. ":marker", q .. ":delayed")
    return
  end
  local blocked = isPausedOrMaxed(q .. ":meta", q .. ":active")
  if priority > 0 then
    rcall("ZADD", q .. ":prioritized", priorityScore(priority, q .. ":pc"), parentId)
  else
    rcall("RPUSH", q .. ":wait", parentId)
  end
  markReady(q .. ":marker", blocked)
  rcall("XADD", q .. ":events", "*", "event", "waiting", "jobId", parentId, "prev", "waiting-children")
end
