--[[
  setDedupKey(key, jobId, de): makes `jobId` the owner of deduplication
  window `key`: with keepLastIfActive the window has no expiry (it ends when
  its owner finishes), else it expires after `de.ttl` ms when one is given.
]]
local function setDedupKey(key, jobId, de)
  local ttl = tonumber(de["ttl"])
  if ttl and ttl > 0 and not de["keepLastIfActive"] then
    rcall("SET", key, jobId, "PX", ttl)
  else
    rcall("SET", key, jobId)
  end
end
