--[[
  addSchedulerJob(k, prefix, schedulerId, jobId, name, data, opts, now, delay, meta):
  stores one iteration of a job scheduler as BullMQ 6 does (hash with `rjk`,
  opts JSON with its `delay` and `jobId`) and queues it: `delayed` with its
  delay marker, or, when due, `wait`/`prioritized` with the ready marker;
  `added` then `delayed`/`waiting` events.
]]
--- @include "delayedScore"
--- @include "enqueueReady"
--- @include "refreshDelayMarker"
local function addSchedulerJob(k, prefix, schedulerId, jobId, name, data, opts, now, delay, meta)
  opts["delay"] = delay
  opts["jobId"] = jobId
  local priority = tonumber(opts["priority"]) or 0
  rcall("HSET", prefix .. jobId, "name", name, "data", data, "opts", cjson.encode(opts),
    "timestamp", string.format("%d", now), "delay", string.format("%d", delay),
    "priority", string.format("%d", priority), "rjk", schedulerId)
  rcall("XADD", k.events, "*", "event", "added", "jobId", jobId, "name", name)
  if delay > 0 then
    local score, due = delayedScore(k.delayed, now, delay)
    rcall("ZADD", k.delayed, score, jobId)
    rcall("XADD", k.events, "MAXLEN", "~", meta.maxLen, "*", "event", "delayed", "jobId", jobId, "delay", due)
    refreshDelayMarker(k.marker, k.delayed)
  else
    enqueueReady(k, jobId, priority, opts["lifo"] and "RPUSH" or "LPUSH")
    rcall("XADD", k.events, "MAXLEN", "~", meta.maxLen, "*", "event", "waiting", "jobId", jobId)
    if not meta.paused and not (meta.concurrency and rcall("LLEN", k.active) >= meta.concurrency) then
      rcall("ZADD", k.marker, "0", "0")
    end
  end
end
