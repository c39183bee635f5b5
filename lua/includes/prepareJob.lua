--[[
  prepareJob(k, prefix, now, w, jobId, n, out) -> hasDeferredFailure
  Starts one job for a worker, as BullMQ does: `ats` + 1, `processedOn`,
  `pb` (worker name), the lock with the worker's n-th token of this call,
  and an `active` event. Appends `jobId, hash` to `out`, the hash as it is
  after those updates.
]]
--- @include "setReplyField"
local function prepareJob(k, prefix, now, w, jobId, n, out)
  local jobKey = prefix .. jobId
  local hash = rcall("HGETALL", jobKey)
  -- where the fields this fetch changes already are in `hash` (0 = absent),
  -- in locals: no table per job
  local ats, hasDefa, atsAt, processedAt, pbAt = 1, false, 0, 0, 0
  for i = 1, #hash, 2 do
    local f = hash[i]
    if f == "ats" then
      ats = (tonumber(hash[i + 1]) or 0) + 1
      atsAt = i + 1
    elseif f == "processedOn" then
      processedAt = i + 1
    elseif f == "pb" then
      pbAt = i + 1
    elseif f == "defa" then
      hasDefa = true
    end
  end
  -- "%d" formats an integer; tostring would go through "%.14g"
  -- (a first start, the common case, skips the formatting)
  local atsText = ats == 1 and "1" or string.format("%d", ats)
  setReplyField(hash, atsAt, "ats", atsText)
  setReplyField(hash, processedAt, "processedOn", w.nowText)
  if w.name then
    setReplyField(hash, pbAt, "pb", w.name)
    rcall("HSET", jobKey, "processedOn", w.nowText, "pb", w.name, "ats", atsText)
  else
    rcall("HSET", jobKey, "processedOn", w.nowText, "ats", atsText)
  end
  -- the first token of the call is sent as text: no number to format
  local token = n == 0 and w.tokenPrefix .. w.tokenStartText or w.tokenPrefix .. string.format("%d", w.tokenStart + n)
  rcall("SET", jobKey .. ":lock", token, "PX", w.lockDurationText)
  rcall("XADD", k.events, "*", "event", "active", "jobId", jobId, "prev", "waiting")
  out[#out + 1] = jobId
  out[#out + 1] = hash
  return hasDefa
end
