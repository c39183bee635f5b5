--[[
  priorityScore(priority, pcKey): score in `prioritized`; the shared counter
  keeps jobs of one priority in FIFO order.
]]
local function priorityScore(priority, pcKey)
  local seq = rcall("INCR", pcKey)
  return priority * 0x100000000 + seq % 0x100000000
end
