--[[
  everySlot(prev, every, now, offset, startDate) -> next, offset
  The next run of an `every` scheduler. After slot `prev`: the following
  slot, or, when slots were missed, the first slot after now that keeps the
  offset. With no previous slot: the start date when given (not before
  now), else the first offset slot after now, else now. A zero offset is
  then derived from the slot chosen.
]]
local function everySlot(prev, every, now, offset, startDate)
  offset = tonumber(offset) or 0
  local nextMillis
  if prev then
    nextMillis = prev + every
    if nextMillis < now then
      local slot = math.floor(now / every) * every + offset
      nextMillis = slot <= now and slot + every or slot
    end
  elseif startDate then
    nextMillis = math.max(tonumber(startDate), now)
  elseif offset > 0 then
    nextMillis = math.floor(now / every) * every + offset
    if nextMillis <= now then
      nextMillis = nextMillis + every
    end
  else
    nextMillis = now
  end
  if offset == 0 then
    offset = nextMillis - math.floor(nextMillis / every) * every
  end
  return math.floor(nextMillis), math.floor(offset)
end
