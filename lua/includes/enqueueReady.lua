--[[
  enqueueReady(k, jobId, priority, pushCmd): puts a job that may run now into
  `wait` (LPUSH = FIFO, RPUSH = LIFO; workers take from the tail) or, with a
  priority, into `prioritized`. The caller adds the marker.
]]
--- @include "priorityScore"
local function enqueueReady(k, jobId, priority, pushCmd)
  if priority > 0 then
    rcall("ZADD", k.prioritized, priorityScore(priority, k.pc), jobId)
  else
    rcall(pushCmd, k.wait, jobId)
  end
end
