--[[
  maxEvents(metaKey): the approximate length the events stream is trimmed to.
  Reads meta `opts.maxLenEvents`; when absent stores the BullMQ default 10000,
  exactly as a BullMQ 6 producer leaves it.
]]
local function maxEvents(metaKey)
  local n = rcall("HGET", metaKey, "opts.maxLenEvents")
  if not n then
    n = 10000
    rcall("HSET", metaKey, "opts.maxLenEvents", n)
  end
  return n
end
