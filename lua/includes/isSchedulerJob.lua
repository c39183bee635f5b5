--[[
  isSchedulerJob(jobId, jobKey, repeatKey): true when the job is the pending
  iteration of a job scheduler, which BullMQ never removes or cleans.
]]
local function isSchedulerJob(jobId, jobKey, repeatKey)
  local schedulerId = rcall("HGET", jobKey, "rjk")
  if schedulerId then
    local millis = rcall("ZSCORE", repeatKey, schedulerId)
    if millis then
      return jobId == "repeat:" .. schedulerId .. ":" .. millis
    end
  end
  return false
end
