--[[
  queueNewJob(k, jobId, timestamp, delay, priority, pushCmd, maxLen) -> true
  when the job was delayed. Puts a job just stored where it waits, as a
  BullMQ add does: `delayed` with its `delayed` event (due time) when it
  has a delay, else `wait` (pushCmd LPUSH = FIFO, RPUSH = LIFO) or
  `prioritized`, with its `waiting` event. Markers are the caller's, which
  sets them once per call. (addJobs-11, the hot path of every add, keeps
  these lines and includes/pausedOrMaxed inline: the two calls cost a
  single add 1.4 % more Redis instructions, 127.4k -> 129.2k, measured with
  interop-tests/redis-instructions.sh.)
]]
--- @include "delayedScore"
--- @include "enqueueReady"
local function queueNewJob(k, jobId, timestamp, delay, priority, pushCmd, maxLen)
  if delay > 0 then
    local score, due = delayedScore(k.delayed, timestamp, delay)
    rcall("ZADD", k.delayed, score, jobId)
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "delayed", "jobId", jobId, "delay", due)
    return true
  end
  enqueueReady(k, jobId, priority, pushCmd)
  rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", jobId)
  return false
end
