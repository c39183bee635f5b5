--[[
  releaseLock(jobKey, stalledKey, jobId, token) -> 0, -2 (no lock) or -6
  (someone else's lock). Deletes the lock when `token` owns it and takes the
  job out of the stalled candidates. Token "0" means the job was never locked.
]]
local function releaseLock(jobKey, stalledKey, jobId, token)
  if token == "0" then
    return 0
  end
  local lockKey = jobKey .. ":lock"
  local current = rcall("GET", lockKey)
  if current == token then
    rcall("DEL", lockKey)
    rcall("SREM", stalledKey, jobId)
    return 0
  end
  if current then
    return -6
  end
  return -2
end
