--[[
  markReady(markerKey, pausedOrMaxed): adds marker member "0" (score 0), which
  wakes any worker blocked on BZPOPMIN, unless the queue cannot hand out jobs.
]]
local function markReady(markerKey, pausedOrMaxed)
  if not pausedOrMaxed then
    rcall("ZADD", markerKey, "0", "0")
  end
end
