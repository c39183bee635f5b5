--[[
  releaseDedupKey(prefix, dedupId, jobId): when a job that owns a
  deduplication window (hash field `deid`) finishes, a window without expiry
  ends with it; an expiring window is left to expire.
]]
local function releaseDedupKey(prefix, dedupId, jobId)
  if not dedupId then
    return
  end
  local key = prefix .. "de:" .. dedupId
  local pttl = rcall("PTTL", key)
  if pttl == 0 or (pttl == -1 and rcall("GET", key) == jobId) then
    rcall("DEL", key)
  end
end
