--[[
  trimFinished(setKey, prefix, now, maxCount, maxAge, limit, limitText):
  applies a keepJobs policy to `completed` or `failed`: drops jobs older
  than maxAge seconds (at most `limit` per call; `limitText` is it as
  text) and keeps the newest maxCount jobs.
]]
--- @include "removeJobKeys"
local function trimFinished(setKey, prefix, now, maxCount, maxAge, limit, limitText)
  if maxAge then
    local cutoff = now - maxAge * 1000
    -- numbers go to Redis as text: Lua would format them with "%.14g",
    -- which costs several times "%d"
    local cutoffText = cutoff
    if cutoff == math.floor(cutoff) then
      cutoffText = string.format("%d", cutoff)
    end
    local old = rcall("ZREVRANGEBYSCORE", setKey, cutoffText, "-inf", "LIMIT", "0", limitText)
    for _, jobId in ipairs(old) do
      removeJobKeys(prefix .. jobId)
    end
    if #old > 0 then
      if #old < limit then
        rcall("ZREMRANGEBYSCORE", setKey, "-inf", cutoffText)
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
