--[[
  Moves an active job whose handler added children (or is told to wait
  for one) to `waiting-children`, as BullMQ 6's
  `Job.moveToWaitingChildren` does: only while it has pending
  dependencies (or while the given child is one of them), releasing its
  lock; event `waiting-children` (prev `active`).

  Input:
    KEYS[1] active
    KEYS[2] waiting-children
    KEYS[3] the job's key
    KEYS[4] stalled
    KEYS[5] events
    ARGV[1] lock token
    ARGV[2] a child's job key to wait for ("" = any pending child)
    ARGV[3] now (ms)
    ARGV[4] job id
  Output:
    0 moved, 1 nothing to wait for (the job stays active), -1 missing job,
    -2 missing lock, -3 not active, -6 lock held by another token,
    -9 a child failed and the job has to fail
]]
local rcall = redis.call
local jobKey, jobId, token = KEYS[3], ARGV[4], ARGV[1]
if rcall("EXISTS", jobKey) ~= 1 then
  return -1
end
if rcall("ZCARD", jobKey .. ":unsuccessful") ~= 0 then
  return -9
end
local pending
if ARGV[2] ~= "" then
  pending = rcall("SISMEMBER", jobKey .. ":dependencies", ARGV[2]) ~= 0
else
  pending = rcall("SCARD", jobKey .. ":dependencies") ~= 0
end
if not pending then
  return 1
end
if token ~= "0" then
  local lock = rcall("GET", jobKey .. ":lock")
  if lock ~= token then
    return lock and -6 or -2
  end
  rcall("DEL", jobKey .. ":lock")
  rcall("SREM", KEYS[4], jobId)
end
if rcall("LREM", KEYS[1], -1, jobId) < 1 then
  return -3
end
rcall("ZADD", KEYS[2], ARGV[3], jobId)
rcall("XADD", KEYS[5], "*", "event", "waiting-children", "jobId", jobId, "prev", "active")
return 0
