--[[
  collectMetrics(metricsKey, n, maxPoints, now): counts n finished jobs in the
  per-minute metrics BullMQ keeps (`metrics:<state>` hash and its `:data`
  list, newest minute first). Counting n at once equals n single calls made
  at the same timestamp.
]]
local function collectMetrics(metricsKey, n, maxPoints, now)
  local before = rcall("HINCRBY", metricsKey, "count", n) - n
  local prevTS = rcall("HGET", metricsKey, "prevTS")
  if not prevTS then
    rcall("HSET", metricsKey, "prevTS", now, "prevCount", 0)
    return
  end
  local minutes = math.min(math.floor(now / 60000) - math.floor(prevTS / 60000), maxPoints)
  if minutes > 0 then
    local dataKey = metricsKey .. ":data"
    local delta = before - rcall("HGET", metricsKey, "prevCount")
    local points = { delta }
    for i = 2, minutes do
      points[i] = 0
    end
    for i = 1, #points, 7000 do
      rcall("LPUSH", dataKey, unpack(points, i, math.min(i + 6999, #points)))
    end
    rcall("LTRIM", dataKey, 0, maxPoints - 1)
    rcall("HSET", metricsKey, "prevCount", before, "prevTS", now)
  end
end
