--[[
  pausedOrMaxed(meta, activeKey): includes/isPausedOrMaxed for a script
  that has read the queue's meta already (includes/readMeta): true when
  the queue is paused or its global concurrency is used up, so a ready job
  gets no wake-up marker.
]]
local function pausedOrMaxed(meta, activeKey)
  return meta.paused or (meta.concurrency ~= nil and rcall("LLEN", activeKey) >= meta.concurrency)
end
