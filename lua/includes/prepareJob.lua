--[[
  prepareJob(k, prefix, now, w, jobId, n, out) -> hasDeferredFailure
  Starts one job for a worker, as BullMQ does: `ats` + 1, `processedOn`,
  `pb` (worker name), the lock with the worker's n-th token of this call,
  and an `active` event. Appends `jobId, hash` to `out`, the hash as it is
  after those updates.
]]
local function prepareJob(k, prefix, now, w, jobId, n, out)
  local jobKey = prefix .. jobId
  local hash = rcall("HGETALL", jobKey)
  local ats, hasDefa, slots = 1, false, {}
  for i = 1, #hash, 2 do
    local f = hash[i]
    if f == "ats" then
      ats = (tonumber(hash[i + 1]) or 0) + 1
      slots.ats = i + 1
    elseif f == "processedOn" or f == "pb" then
      slots[f] = i + 1
    elseif f == "defa" then
      hasDefa = true
    end
  end
  local function put(field, value)
    if slots[field] then
      hash[slots[field]] = value
    else
      hash[#hash + 1] = field
      hash[#hash + 1] = value
    end
  end
  -- numbers go to Redis as text made once: Redis would format each
  -- number argument itself, with a costly "%.17g"
  local atsText = tostring(ats)
  put("ats", atsText)
  put("processedOn", w.nowText)
  if w.name then
    put("pb", w.name)
    rcall("HSET", jobKey, "processedOn", w.nowText, "pb", w.name, "ats", atsText)
  else
    rcall("HSET", jobKey, "processedOn", w.nowText, "ats", atsText)
  end
  rcall("SET", jobKey .. ":lock", w.tokenPrefix .. (w.tokenStart + n), "PX", w.lockDurationText)
  rcall("XADD", k.events, "*", "event", "active", "jobId", jobId, "prev", "waiting")
  out[#out + 1] = jobId
  out[#out + 1] = hash
  return hasDefa
end
