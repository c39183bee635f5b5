--[[
  delayedScore(delayedKey, timestamp, delay) -> score, dueTimestamp
  Score of a delayed job: due millisecond * 4096 plus a sequence number so
  jobs due in the same millisecond keep their insertion order (capped at 4095).
]]
local function delayedScore(delayedKey, timestamp, delay)
  local due = tonumber(timestamp)
  if delay > 0 then
    due = due + delay
  end
  local low = due * 0x1000
  local high = (due + 1) * 0x1000 - 1
  local last = rcall("ZREVRANGEBYSCORE", delayedKey, high, low, "WITHSCORES", "LIMIT", 0, 1)
  local lastScore = tonumber(last[2])
  if lastScore then
    if lastScore >= high then
      return high, due
    end
    return lastScore + 1, due
  end
  return low, due
end
