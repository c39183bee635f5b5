--[[
  addSchedulerJob(k, prefix, schedulerId, jobId, name, data, opts, now, delay, meta):
  stores one iteration of a job scheduler as BullMQ 6 does (hash with `rjk`,
  opts JSON with its `delay` and `jobId`) and queues it: `delayed` with its
  delay marker, or, when due, `wait`/`prioritized` with the ready marker;
  `added` then `delayed`/`waiting` events.
]]
--- @include "pausedOrMaxed"
--- @include "queueNewJob"
--- @include "refreshDelayMarker"
local function addSchedulerJob(k, prefix, schedulerId, jobId, name, data, opts, now, delay, meta)
  opts["delay"] = delay
  opts["jobId"] = jobId
  local priority = tonumber(opts["priority"]) or 0
  rcall("HSET", prefix .. jobId, "name", name, "data", data, "opts", cjson.encode(opts),
    "timestamp", string.format("%d", now), "delay", string.format("%d", delay),
    "priority", string.format("%d", priority), "rjk", schedulerId)
  rcall("XADD", k.events, "*", "event", "added", "jobId", jobId, "name", name)
  if queueNewJob(k, jobId, now, delay, priority, opts["lifo"] and "RPUSH" or "LPUSH", meta.maxLen) then
    refreshDelayMarker(k.marker, k.delayed)
  elseif not pausedOrMaxed(meta, k.active) then
    rcall("ZADD", k.marker, "0", "0")
  end
end
