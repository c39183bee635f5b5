--[[
  takeJobs(k, prefix, now, wanted, w, out) -> taken, rateLimitTtl, nextDelayed, blocked
  Moves up to `wanted` jobs to `active` for one worker, in BullMQ's order:
  due delayed jobs are promoted first, then `wait` (tail first) before
  `prioritized` (lowest score first). Each job gets its lock
  (`<job>:lock` = token, PX lockDuration), an `active` event, `processedOn`,
  `pb` (worker name) and `ats` + 1, exactly like a BullMQ 6 fetch.
  Appends `jobId, HGETALL(job)` pairs to `out`.
  w: {tokenPrefix, tokenStart, lockDuration, limiterMax, limiterDuration, name}
  `blocked` is true when the queue is paused or at global concurrency.
]]
--- @include "nextDelayedTimestamp"
--- @include "promoteDueJobs"
--- @include "rateLimitTtl"
local function takeJobs(k, prefix, now, wanted, w, out)
  local meta = rcall("HMGET", k.meta, "paused", "concurrency", "max", "duration")
  local blocked = meta[1] and true or false
  local concurrency = tonumber(meta[2])
  local room = wanted
  if not blocked and concurrency then
    room = concurrency - rcall("LLEN", k.active)
    if room <= 0 then
      blocked = true
    end
  end
  promoteDueJobs(k, prefix, now, blocked)
  local maxJobs = tonumber(meta[3]) or w.limiterMax
  local limitDuration = w.limiterDuration or tonumber(meta[4])
  local ttl = rateLimitTtl(maxJobs, k.limiter)
  if ttl > 0 then
    return 0, ttl, 0, blocked
  end
  if blocked then
    return 0, 0, 0, true
  end
  if room < wanted then
    wanted = room
  end
  local taken = 0
  while taken < wanted do
    local jobId = rcall("RPOPLPUSH", k.wait, k.active)
    while jobId and string.sub(jobId, 1, 2) == "0:" do
      -- a BullMQ <= 4 wait-list marker: drop it
      rcall("LREM", k.active, 1, jobId)
      jobId = rcall("RPOPLPUSH", k.wait, k.active)
    end
    if not jobId then
      local popped = rcall("ZPOPMIN", k.prioritized)
      if #popped == 0 then
        rcall("DEL", k.pc)
        break
      end
      jobId = popped[1]
      rcall("LPUSH", k.active, jobId)
    end
    local jobKey = prefix .. jobId
    local limited = false
    if maxJobs and rcall("HEXISTS", jobKey, "defa") == 0 then
      local used = rcall("INCR", k.limiter)
      if used == 1 then
        rcall("PEXPIRE", k.limiter, math.floor(math.abs(limitDuration)))
      end
      limited = used >= maxJobs
    end
    rcall("SET", jobKey .. ":lock", w.tokenPrefix .. (w.tokenStart + taken), "PX", w.lockDuration)
    rcall("XADD", k.events, "*", "event", "active", "jobId", jobId, "prev", "waiting")
    if w.name then
      rcall("HSET", jobKey, "processedOn", now, "pb", w.name)
    else
      rcall("HSET", jobKey, "processedOn", now)
    end
    rcall("HINCRBY", jobKey, "ats", 1)
    out[#out + 1] = jobId
    out[#out + 1] = rcall("HGETALL", jobKey)
    taken = taken + 1
    if limited then
      break
    end
  end
  if taken > 0 and (rcall("LLEN", k.wait) > 0 or rcall("ZCARD", k.prioritized) > 0) then
    -- more work is ready: wake the next idle worker, whatever its language
    rcall("ZADD", k.marker, 0, "0")
  end
  local nextDelayed = 0
  if taken < wanted then
    nextDelayed = nextDelayedTimestamp(k.delayed)
  end
  return taken, 0, nextDelayed, false
end
