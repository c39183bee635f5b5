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
  local dedupId = de["id"]
  local key = prefix .. "de:" .. dedupId
  local ttl = tonumber(de["ttl"])
  -- (the helpers live inside: a script that adds jobs without
  -- deduplication does not pay for creating them)
  -- the new job was folded into `owner`'s window
  local function deduplicated(owner)
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "deduplicated", "jobId", owner,
      "deduplicationId", dedupId, "deduplicatedJobId", jobId)
  end
  -- `owner` owns the window: without expiry under keepLastIfActive (it
  -- ends when its owner finishes), else for the ttl when there is one
  local function claim(owner)
    if ttl and ttl > 0 and not de["keepLastIfActive"] then
      rcall("SET", key, owner, "PX", ttl)
    else
      rcall("SET", key, owner)
    end
  end
  -- a window without expiry whose owner job is gone (lost in an outage)
  -- would swallow every later add: the new job takes it over
  local function recoverStale(owner)
    if owner and rcall("PTTL", key) == -1 and rcall("EXISTS", prefix .. owner) == 0 then
      rcall("DEL", key, prefix .. "dn:" .. dedupId)
      claim(jobId)
      return true
    end
    return false
  end
  -- keepLastIfActive with the owner active: the new job is kept in
  -- dn:<id> (replacing an earlier one) and added when the owner finishes;
  -- the window stops expiring meanwhile
  local function keepNext(owner)
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
    local nextKey = prefix .. "dn:" .. dedupId
    rcall("DEL", nextKey)
    rcall("HSET", nextKey, "name", name, "data", data, "opts", cjson.encode(cjson.decode(opts)), "jid", jobId)
    rcall("PERSIST", key)
    deduplicated(owner)
    return true
  end
  local owner
  if de["replace"] then
    owner = rcall("GET", key)
    if not owner then
      claim(jobId)
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
        claim(jobId)
      end
      return nil
    end
    if recoverStale(owner) then
      return nil
    end
    keepNext(owner)
    return owner
  end

  if ttl and ttl > 0 and de["extend"] then
    owner = rcall("GET", key)
    if not owner then
      claim(jobId)
      return nil
    end
    if recoverStale(owner) then
      return nil
    end
    if not keepNext(owner) then
      claim(owner)
      deduplicated(owner)
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
    if recoverStale(owner) then
      return nil
    end
    if not keepNext(owner) then
      deduplicated(owner)
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
