--[[
  isPausedOrMaxed(metaKey, activeKey): true when the queue is globally paused
  (meta field `paused` present) or its global concurrency (meta `concurrency`)
  is already used up by the active list. Such queues get no wake-up marker.
]]
local function isPausedOrMaxed(metaKey, activeKey)
  local m = rcall("HMGET", metaKey, "paused", "concurrency")
  if m[1] then
    return true
  end
  if m[2] then
    return rcall("LLEN", activeKey) >= tonumber(m[2])
  end
  return false
end
