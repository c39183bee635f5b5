--[[
  requeueDedupNext(k, prefix, dedupId, now, maxLen): when a job that owns a
  deduplication window finishes, the latest duplicate stored meanwhile
  (`dn:<dedupId>`, written by producers using keepLastIfActive) becomes a
  real job: it takes the window (`de:<dedupId>`), is stored like any added
  job (`added` event) and enqueued as delayed, prioritized or waiting.
]]
--- @include "delayedScore"
--- @include "enqueueReady"
--- @include "isPausedOrMaxed"
--- @include "markReady"
--- @include "refreshDelayMarker"
local function requeueDedupNext(k, prefix, dedupId, now, maxLen)
  local nextKey = prefix .. "dn:" .. dedupId
  if rcall("EXISTS", nextKey) == 0 then
    return
  end
  local n = rcall("HMGET", nextKey, "name", "data", "opts", "pk", "pd", "pdk", "rjk", "jid")
  local counter = rcall("INCR", prefix .. "id")
  local jobId = n[8] or tostring(counter)
  local jobKey = prefix .. jobId
  local ok, opts = pcall(cjson.decode, n[3] or "{}")
  if not ok or type(opts) ~= "table" then
    opts = {}
  end
  local de = opts["de"]
  local ttl = type(de) == "table" and tonumber(de["ttl"])
  local dedupKey = prefix .. "de:" .. dedupId
  if type(de) == "table" and de["keepLastIfActive"] then
    rcall("SET", dedupKey, jobId)
  elseif ttl and ttl > 0 then
    rcall("SET", dedupKey, jobId, "PX", ttl)
  else
    rcall("SET", dedupKey, jobId)
  end
  local delay = tonumber(opts["delay"]) or 0
  local priority = tonumber(opts["priority"]) or 0
  local fields = { "name", n[1], "data", n[2], "opts", n[3], "timestamp", now, "delay", delay,
    "priority", priority }
  if n[4] then
    fields[#fields + 1] = "parentKey"
    fields[#fields + 1] = n[4]
    fields[#fields + 1] = "parent"
    fields[#fields + 1] = n[5]
  end
  if n[7] then
    fields[#fields + 1] = "rjk"
    fields[#fields + 1] = n[7]
  end
  if type(de) == "table" and de["id"] then
    fields[#fields + 1] = "deid"
    fields[#fields + 1] = de["id"]
  end
  rcall("HSET", jobKey, unpack(fields))
  rcall("XADD", k.events, "*", "event", "added", "jobId", jobId, "name", n[1])
  if delay > 0 then
    local score, due = delayedScore(k.delayed, now, delay)
    rcall("ZADD", k.delayed, score, jobId)
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "delayed", "jobId", jobId, "delay", due)
    refreshDelayMarker(k.marker, k.delayed)
  else
    local pushCmd = "LPUSH"
    if opts["lifo"] then
      pushCmd = "RPUSH"
    end
    enqueueReady(k, jobId, priority, pushCmd)
    markReady(k.marker, isPausedOrMaxed(k.meta, k.active))
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", jobId)
  end
  if n[6] then
    rcall("SADD", n[6], jobKey)
  end
  rcall("DEL", nextKey)
end
