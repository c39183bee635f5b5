--[[
  readMeta(metaKey) -> meta: the queue's meta fields the hot scripts need,
  in one HMGET: paused (bool), concurrency, max and duration (global rate
  limit), maxLenEvents (stored as BullMQ's default 10000 when absent).
]]
local function readMeta(metaKey)
  local m = rcall("HMGET", metaKey, "paused", "concurrency", "max", "duration", "opts.maxLenEvents")
  local maxLen = m[5]
  if not maxLen then
    maxLen = 10000
    rcall("HSET", metaKey, "opts.maxLenEvents", maxLen)
  end
  return {
    paused = m[1] and true or false,
    concurrency = tonumber(m[2]),
    max = tonumber(m[3]),
    duration = tonumber(m[4]),
    maxLen = maxLen
  }
end
