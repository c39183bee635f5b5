--[[
  removeJobKeys(jobKey): deletes a job hash and every key hanging off it
  (logs and flow bookkeeping), as BullMQ does when it removes a job.
]]
local function removeJobKeys(jobKey)
  return rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":dependencies",
    jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
end
