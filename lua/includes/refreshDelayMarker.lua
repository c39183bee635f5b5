--[[
  refreshDelayMarker(markerKey, delayedKey): sets marker member "1" to the due
  time (ms, possibly fractional) of the earliest delayed job, if any, so a
  blocked worker wakes up when that job becomes due. Returns that due time,
  or nil when nothing is delayed.
]]
local function refreshDelayMarker(markerKey, delayedKey)
  local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  local score = tonumber(first[2])
  if score then
    local due = score / 0x1000
    rcall("ZADD", markerKey, due, "1")
    return due
  end
end
