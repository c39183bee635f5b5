--[[
  deduplicate(k, prefix, de, jobId, name, data, opts, timestamp, delay, maxLen)
  -> owner id, or nil
  BullMQ 6's deduplication of an add with option `de` = {id, ttl?, extend?,
  replace?, keepLastIfActive?, reschedule?}. Returns nil when the new job is
  to be added (it then owns the window `de:<id>`), or the id of the job
  that owns the window, which the add answers with instead:
    - plain: the first job owns the window until it finishes (or `ttl`);
      later adds are `deduplicated`;
    - extend: each duplicate restarts the ttl;
    - replace: a delayed owner is removed and the new job takes its place;
    - keepLastIfActive: a duplicate arriving while the owner is active is
      kept and added when the owner finishes;
    - reschedule: a delayed owner gets the duplicate's delay.
]]
--- @include "delayedScore"
--- @include "refreshDelayMarker"
--- @include "removeJobKeys"
local function deduplicate(k, prefix, de, jobId, name, data, opts, timestamp, delay, maxLen)
  -- (helpers live inside: a script that adds jobs without deduplication
  -- does not pay for creating them)
  -- the window's owner becomes `owner`: without expiry under
  -- keepLastIfActive (it ends when its owner finishes), else after the ttl
  local function setDedupKey(key, jobId, de)
    local ttl = tonumber(de["ttl"])
    if ttl and ttl > 0 and not de["keepLastIfActive"] then
      rcall("SET", key, jobId, "PX", ttl)
    else
      rcall("SET", key, jobId)
    end
  end
  -- a window without expiry whose owner job is gone (lost in an outage)
  -- would swallow every later add: `jobId` takes it over
  local function recoverStaleDedup(key, prefix, owner, jobId, de)
    if owner and rcall("PTTL", key) == -1 and rcall("EXISTS", prefix .. owner) == 0 then
      rcall("DEL", key, prefix .. "dn:" .. de["id"])
      setDedupKey(key, jobId, de)
      return true
    end
    return false
  end
  -- keepLastIfActive with the owner active: the latest duplicate is kept
  -- in dn:<id> and added when the owner finishes; the window stops expiring
  local function keepDedupNext(k, prefix, de, owner, jobId, name, data, opts, maxLen)
    if not (de["keepLastIfActive"] and owner) then
      return false
    end
    local pos = redis.pcall("LPOS", k.active, owner)
    if type(pos) == "table" and pos.err then
      pos = nil
      for _, id in ipairs(rcall("LRANGE", k.active, 0, -1)) do
        if id == owner then
          pos = true
          break
        end
      end
    end
    if not pos then
      return false
    end
    local nextKey = prefix .. "dn:" .. de["id"]
    rcall("DEL", nextKey)
    rcall("HSET", nextKey, "name", name, "data", data, "opts", cjson.encode(cjson.decode(opts)), "jid", jobId)
    rcall("PERSIST", prefix .. "de:" .. de["id"])
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "deduplicated", "jobId", owner,
      "deduplicationId", de["id"], "deduplicatedJobId", jobId)
    return true
  end
  local dedupId = de["id"]
  local key = prefix .. "de:" .. dedupId
  local ttl = tonumber(de["ttl"])
  local owner
  if de["replace"] then
    owner = rcall("GET", key)
    if not owner then
      setDedupKey(key, jobId, de)
      return nil
    end
    if rcall("ZREM", k.delayed, owner) > 0 then
      removeJobKeys(prefix .. owner)
      rcall("XADD", k.events, "*", "event", "removed", "jobId", owner, "prev", "delayed")
      rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "deduplicated", "jobId", jobId,
        "deduplicationId", dedupId, "deduplicatedJobId", owner)
      rcall("DEL", prefix .. "dn:" .. dedupId)
      if not de["keepLastIfActive"] and not de["extend"] and ttl and ttl > 0 then
        rcall("SET", key, jobId, "KEEPTTL")
      else
        setDedupKey(key, jobId, de)
      end
      return nil
    end
    if recoverStaleDedup(key, prefix, owner, jobId, de) then
      return nil
    end
    keepDedupNext(k, prefix, de, owner, jobId, name, data, opts, maxLen)
    return owner
  end

  if ttl and ttl > 0 and de["extend"] then
    owner = rcall("GET", key)
    if not owner then
      setDedupKey(key, jobId, de)
      return nil
    end
    if recoverStaleDedup(key, prefix, owner, jobId, de) then
      return nil
    end
    if not keepDedupNext(k, prefix, de, owner, jobId, name, data, opts, maxLen) then
      setDedupKey(key, owner, de)
      rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "deduplicated", "jobId", owner,
        "deduplicationId", dedupId, "deduplicatedJobId", jobId)
    end
  else
    local claimed
    if ttl and ttl > 0 and not de["keepLastIfActive"] then
      claimed = rcall("SET", key, jobId, "PX", ttl, "NX")
    else
      claimed = rcall("SET", key, jobId, "NX")
    end
    if claimed then
      return nil
    end
    owner = rcall("GET", key)
    if recoverStaleDedup(key, prefix, owner, jobId, de) then
      return nil
    end
    if not keepDedupNext(k, prefix, de, owner, jobId, name, data, opts, maxLen) then
      rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "deduplicated", "jobId", owner,
        "deduplicationId", dedupId, "deduplicatedJobId", jobId)
    end
  end
  if owner and de["reschedule"] and rcall("ZSCORE", k.delayed, owner) then
    rcall("HSET", prefix .. owner, "delay", string.format("%d", delay))
    local score, due = delayedScore(k.delayed, timestamp, delay)
    rcall("ZADD", k.delayed, score, owner)
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "delayed", "jobId", owner, "delay", due)
    refreshDelayMarker(k.marker, k.delayed)
  end
  return owner
end
