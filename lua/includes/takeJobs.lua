--[[
  takeJobs(k, prefix, now, wanted, w, meta, out) -> taken, rateLimitTtl, nextDelayed, blocked
  Moves up to `wanted` jobs to `active` for one worker, in BullMQ's order:
  due delayed jobs are promoted first, then `wait` (tail first) before
  `prioritized` (lowest score first). Each job gets its lock
  (`<job>:lock` = token, PX lockDuration), an `active` event, `processedOn`,
  `pb` (worker name) and `ats` + 1, exactly like a BullMQ 6 fetch.
  Several jobs without a rate limit are taken in bulk (LRANGE/LTRIM,
  ZPOPMIN n, one LPUSH), which leaves `active` as n RPOPLPUSHes would.
  Appends `jobId, HGETALL(job)` pairs to `out` (the hash as it is after
  those updates).
  w: from workerArgs {nowText, tokenPrefix, tokenStart(Text), lockDurationText,
     limiterMax, limiterDuration, name}
  meta: from readMeta. `blocked` is true when the queue is paused or at its
  global concurrency.
]]
--- @include "nextDelayedTimestamp"
--- @include "prepareJob"
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
  -- `wait` and `prioritized` were both seen empty: no need to look again
  -- before deciding on the marker
  local exhausted = false

  if maxJobs or wanted == 1 then
    -- one at a time: each start counts against the limit (jobs with a
    -- deferred failure excepted) and the limit may stop us mid-way; for a
    -- single job this is also the cheapest way
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
          exhausted = true
          break
        end
        jobId = popped[1]
        rcall("LPUSH", k.active, jobId)
      end
      local hasDefa = prepareJob(k, prefix, now, w, jobId, taken, out)
      taken = taken + 1
      if maxJobs and not hasDefa then
        local used = rcall("INCR", k.limiter)
        if used == 1 then
          rcall("PEXPIRE", k.limiter, math.floor(math.abs(limitDuration)))
        end
        if used >= maxJobs then
          break
        end
      end
    end
  elseif wanted > 0 then
    local ids = {}
    local tail = rcall("LRANGE", k.wait, -wanted, -1)
    if #tail > 0 then
      rcall("LTRIM", k.wait, 0, -(#tail + 1))
      for i = #tail, 1, -1 do
        -- the tail runs first; BullMQ <= 4 wait-list markers are dropped
        if string.sub(tail[i], 1, 2) ~= "0:" then
          ids[#ids + 1] = tail[i]
        end
      end
    end
    if #ids < wanted then
      local popped = rcall("ZPOPMIN", k.prioritized, wanted - #ids)
      if #popped == 0 then
        rcall("DEL", k.pc)
      end
      -- fewer than asked from both: both are empty now
      exhausted = #tail < wanted and #popped / 2 < wanted - #ids
      for i = 1, #popped, 2 do
        ids[#ids + 1] = popped[i]
      end
    end
    if #ids > 0 then
      rcall("LPUSH", k.active, unpack(ids))
      for _, jobId in ipairs(ids) do
        prepareJob(k, prefix, now, w, jobId, taken, out)
        taken = taken + 1
      end
    end
  end

  if taken > 0 and not exhausted
    and (rcall("LLEN", k.wait) > 0 or rcall("ZCARD", k.prioritized) > 0) then
    -- more work is ready: wake the next idle worker, whatever its language
    rcall("ZADD", k.marker, "0", "0")
  end
  local nextDelayed = 0
  if taken < wanted then
    nextDelayed = nextDelayedTimestamp(k.delayed)
  end
  return taken, 0, nextDelayed, false
end
