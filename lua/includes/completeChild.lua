--[[
  completeChild(parentKey, jobKey, returnvalue, now): a flow child completed.
  Records its return value in the parent's `:processed` hash and, once the
  parent has no pending dependencies and waits for children, moves the
  parent to `wait`, `prioritized` or `delayed` in the parent's queue.
]]
--- @include "delayedScore"
--- @include "isPausedOrMaxed"
--- @include "priorityScore"
--- @include "refreshDelayMarker"
local function completeChild(parentKey, jobKey, returnvalue, now)
  local depsKey = parentKey .. ":dependencies"
  if rcall("SREM", depsKey, jobKey) ~= 1 then
    return
  end
  rcall("HSET", parentKey .. ":processed", jobKey, returnvalue)
  if rcall("SCARD", depsKey) ~= 0 then
    return
  end
  local parentId = string.match(parentKey, "([^:]+)$")
  local q = string.sub(parentKey, 1, #parentKey - #parentId)
  if rcall("ZREM", q .. "waiting-children", parentId) ~= 1 then
    return
  end
  local attrs = rcall("HMGET", parentKey, "priority", "delay")
  local priority = tonumber(attrs[1]) or 0
  local delay = tonumber(attrs[2]) or 0
  local events = q .. "events"
  if delay > 0 then
    local score, due = delayedScore(q .. "delayed", now, delay)
    rcall("ZADD", q .. "delayed", score, parentId)
    rcall("XADD", events, "*", "event", "delayed", "jobId", parentId, "delay", due)
    refreshDelayMarker(q .. "marker", q .. "delayed")
    return
  end
  local blocked = isPausedOrMaxed(q .. "meta", q .. "active")
  if priority > 0 then
    rcall("ZADD", q .. "prioritized", priorityScore(priority, q .. "pc"), parentId)
  else
    rcall("RPUSH", q .. "wait", parentId)
  end
  if not blocked then
    rcall("ZADD", q .. "marker", 0, "0")
  end
  rcall("XADD", events, "*", "event", "waiting", "jobId", parentId, "prev", "waiting-children")
end
