--[[
  removeJob(prefix, jobId, maxLen) -> true when a job was removed.
  Takes a job out of whatever state holds it, ends a deduplication window it
  owns, detaches it from a flow parent's pending dependencies, deletes its
  keys and emits `removed` with the state it was in.
]]
--- @include "removeJobKeys"
local function removeJob(prefix, jobId, maxLen)
  local jobKey = prefix .. jobId
  local prev = "unknown"
  for _, state in ipairs({ "completed", "waiting-children", "delayed", "failed", "prioritized" }) do
    if rcall("ZREM", prefix .. state, jobId) == 1 then
      prev = state
      break
    end
  end
  if prev == "unknown" then
    for _, state in ipairs({ "wait", "paused", "active" }) do
      if rcall("LREM", prefix .. state, 1, jobId) == 1 then
        prev = state
        break
      end
    end
  end
  local attrs = rcall("HMGET", jobKey, "deid", "parentKey")
  if attrs[1] then
    local dedupKey = prefix .. "de:" .. attrs[1]
    if rcall("GET", dedupKey) == jobId then
      rcall("DEL", dedupKey, prefix .. "dn:" .. attrs[1])
    end
  end
  if attrs[2] then
    rcall("SREM", attrs[2] .. ":dependencies", jobKey)
  end
  if removeJobKeys(jobKey) > 0 then
    rcall("XADD", prefix .. "events", "MAXLEN", "~", maxLen, "*", "event", "removed",
      "jobId", jobId, "prev", prev)
    return true
  end
  return false
end
