--[[
  Pauses or resumes a queue globally (BullMQ's pause). Pausing sets meta
  `paused` and deletes the marker so no worker wakes up; resuming clears it,
  moves any legacy `paused` list back into `wait`, and restores the marker.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    legacy paused list
    ARGV[1]     "paused" or "resumed"
  Output:
    0
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/refreshDelayMarker"
local k = queueKeys()
if ARGV[1] == "paused" then
  rcall("HSET", k.meta, "paused", 1)
  rcall("DEL", k.marker)
else
  rcall("HDEL", k.meta, "paused")
  while rcall("EXISTS", KEYS[11]) == 1 do
    if rcall("EXISTS", k.wait) == 0 then
      rcall("RENAME", KEYS[11], k.wait)
    else
      local ids = rcall("LRANGE", KEYS[11], 0, 6999)
      rcall("RPUSH", k.wait, unpack(ids))
      rcall("LTRIM", KEYS[11], #ids, -1)
    end
  end
  if rcall("LLEN", k.wait) + rcall("ZCARD", k.prioritized) > 0 then
    rcall("ZADD", k.marker, "0", "0")
  else
    refreshDelayMarker(k.marker, k.delayed)
  end
end
rcall("XADD", k.events, "*", "event", ARGV[1])
return 0
