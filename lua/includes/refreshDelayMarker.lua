--[[
  refreshDelayMarker(markerKey, delayedKey): sets marker member "1" to the due
  time (ms, possibly fractional) of the earliest delayed job, if any, so a
  blocked worker wakes up when that job becomes due.
]]
local function refreshDelayMarker(markerKey, delayedKey)
  local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  local score = tonumber(first[2])
  if score then
    rcall("ZADD", markerKey, score / 0x1000, "1")
  end
end
