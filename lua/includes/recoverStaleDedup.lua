--[[
  recoverStaleDedup(key, prefix, owner, jobId, de) -> true when the window
  `key` was stale and `jobId` now owns it: a window without expiry whose
  owner job no longer exists (it was lost, e.g. in an outage) would
  otherwise swallow every later add. A kept next job goes with it.
]]
--- @include "setDedupKey"
local function recoverStaleDedup(key, prefix, owner, jobId, de)
  if owner and rcall("PTTL", key) == -1 and rcall("EXISTS", prefix .. owner) == 0 then
    rcall("DEL", key, prefix .. "dn:" .. de["id"])
    setDedupKey(key, jobId, de)
    return true
  end
  return false
end
