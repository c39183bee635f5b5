--[[
  nextDelayedTimestamp(delayedKey) -> due time (ms) of the earliest delayed
  job, or 0 when nothing is delayed.
]]
local function nextDelayedTimestamp(delayedKey)
  local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
  local score = tonumber(first[2])
  if score then
    return score / 0x1000
  end
  return 0
end
