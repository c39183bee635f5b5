--[[
  trimFinished(setKey, prefix, now, maxCount, maxAge, limit): applies a
  keepJobs policy to `completed` or `failed`: drops jobs older than maxAge
  seconds (at most `limit` per call) and keeps the newest maxCount jobs.
]]
--- @include "removeJobKeys"
local function trimFinished(setKey, prefix, now, maxCount, maxAge, limit)
  if maxAge then
    local cutoff = now - maxAge * 1000
    local old = rcall("ZREVRANGEBYSCORE", setKey, cutoff, "-inf", "LIMIT", 0, limit)
    for _, jobId in ipairs(old) do
      removeJobKeys(prefix .. jobId)
    end
    if #old > 0 then
      if #old < limit then
        rcall("ZREMRANGEBYSCORE", setKey, "-inf", cutoff)
      else
        for i = 1, #old, 7000 do
          rcall("ZREM", setKey, unpack(old, i, math.min(i + 6999, #old)))
        end
      end
    end
  end
  if maxCount and maxCount > 0 then
    local extra = rcall("ZREVRANGE", setKey, maxCount, -1)
    if #extra > 0 then
      for _, jobId in ipairs(extra) do
        removeJobKeys(prefix .. jobId)
      end
      rcall("ZREMRANGEBYRANK", setKey, 0, -(maxCount + 1))
    end
  end
end
