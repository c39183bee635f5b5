--[[
  queueKeys() -> k: names the ten queue keys that every queue-state script
  receives first, in this order:
  KEYS[1] wait, KEYS[2] active, KEYS[3] prioritized, KEYS[4] events,
  KEYS[5] stalled, KEYS[6] limiter, KEYS[7] delayed, KEYS[8] meta,
  KEYS[9] pc (priority counter), KEYS[10] marker.
]]
local function queueKeys()
  return {
    wait = KEYS[1], active = KEYS[2], prioritized = KEYS[3], events = KEYS[4],
    stalled = KEYS[5], limiter = KEYS[6], delayed = KEYS[7], meta = KEYS[8],
    pc = KEYS[9], marker = KEYS[10]
  }
end
