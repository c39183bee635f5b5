--[[
  takeJobs(k, prefix, now, wanted, w, meta, out) -> taken, rateLimitTtl, nextDelayed, blocked
  Moves up to `wanted` jobs to `active` for one worker, in BullMQ's order:
  due delayed jobs are promoted first, then `wait` (tail first) before
  `prioritized` (lowest score first). Each job gets its lock
  (`<job>:lock` = token, PX lockDuration), an `active` event, `processedOn`,
  `pb` (worker name) and `ats` + 1, exactly like a BullMQ 6 fetch.
  Appends `jobId, HGETALL(job)` pairs to `out` (the hash as it is after
  those updates).
  w: {tokenPrefix, tokenStart, lockDuration, limiterMax, limiterDuration, name}
  meta: from readMeta. `blocked` is true when the queue is paused or at its
  global concurrency.
]]
--- @include "nextDelayedTimestamp"
--- @include "promoteDueJobs"
--- @include "rateLimitTtl"
local function takeJobs(k, prefix, now, wanted, w, meta, out)
  local blocked = meta.paused
  local room = wanted
  if not blocked and meta.concurrency then
    room = meta.concurrency - rcall("LLEN", k.active)
    if room <= 0 then
      blocked = true
    end
  end
  promoteDueJobs(k, prefix, now, blocked)
  local maxJobs = meta.max or w.limiterMax
  local limitDuration = w.limiterDuration or meta.duration
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
    local hash = rcall("HGETALL", jobKey)
    -- update ats, processedOn and pb in Redis and in the copy we return
    local ats, hasDefa, slots = 1, false, {}
    for i = 1, #hash, 2 do
      local f = hash[i]
      if f == "ats" then
        ats = (tonumber(hash[i + 1]) or 0) + 1
        slots.ats = i + 1
      elseif f == "processedOn" or f == "pb" then
        slots[f] = i + 1
      elseif f == "defa" then
        hasDefa = true
      end
    end
    local function put(field, value)
      if slots[field] then
        hash[slots[field]] = value
      else
        hash[#hash + 1] = field
        hash[#hash + 1] = value
      end
    end
    put("ats", tostring(ats))
    put("processedOn", tostring(now))
    if w.name then
      put("pb", w.name)
      rcall("HSET", jobKey, "processedOn", now, "pb", w.name, "ats", ats)
    else
      rcall("HSET", jobKey, "processedOn", now, "ats", ats)
    end
    local limited = false
    if maxJobs and not hasDefa then
      local used = rcall("INCR", k.limiter)
      if used == 1 then
        rcall("PEXPIRE", k.limiter, math.floor(math.abs(limitDuration)))
      end
      limited = used >= maxJobs
    end
    rcall("SET", jobKey .. ":lock", w.tokenPrefix .. (w.tokenStart + taken), "PX", w.lockDuration)
    rcall("XADD", k.events, "*", "event", "active", "jobId", jobId, "prev", "waiting")
    out[#out + 1] = jobId
    out[#out + 1] = hash
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
