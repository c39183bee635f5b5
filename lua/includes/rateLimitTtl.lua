--[[
  rateLimitTtl(maxJobs, limiterKey) -> ms until the rate limiter lets another
  job start, 0 when it does now.
]]
local function rateLimitTtl(maxJobs, limiterKey)
  if maxJobs and maxJobs <= (tonumber(rcall("GET", limiterKey)) or 0) then
    local pttl = rcall("PTTL", limiterKey)
    if pttl == 0 then
      rcall("DEL", limiterKey)
    end
    if pttl > 0 then
      return pttl
    end
  end
  return 0
end
