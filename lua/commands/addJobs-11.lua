--[[
  Adds a batch of jobs in one call, each exactly as a BullMQ 6 `Queue.add`
  would: job hash, `added` event, then `wait` (LPUSH, or RPUSH for LIFO),
  `prioritized` or `delayed`, its `waiting`/`delayed` event and the marker.
  Queue metadata is read once per call instead of once per job.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    id counter
    ARGV[1]     job key prefix, e.g. "bull:Q:"
    ARGV[2]     number of jobs n
    then 10 values per job:
      custom id ("" = next counter value), name, data JSON, opts JSON,
      timestamp ms, delay ms, priority, lifo ("1" or ""),
      deduplication JSON (the `de` option, "" = none),
      parent JSON (the `parent` hash field of a flow child, "" = none)
  Output:
    array of n job ids; for a custom id that already exists, the existing
    id (and a `duplicated` event; with a parent, the job is attached to it:
    includes/attachExisting), or -7 when another parent holds that job;
    for a deduplicated job the id of the job that owns its window, as
    BullMQ does. -5 (and nothing written) when a parent job does not exist.
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/enqueueReady"
--- @include "includes/readMeta"

-- Delays, deduplication and re-attaching an existing job to a parent are
-- rare: their helpers are defined when a call needs them, not on every
-- call (a Lua function definition runs each time the script does).
local later
local function lazy()
  if not later then
    --- @include "includes/attachExisting"
    --- @include "includes/deduplicate"
    later = { attachExisting = attachExisting, deduplicate = deduplicate, delayedScore = delayedScore,
      refreshDelayMarker = refreshDelayMarker }
  end
  return later
end

local k = queueKeys()
local prefix = ARGV[1]
local n = tonumber(ARGV[2])
local meta = readMeta(k.meta)
local maxLen = meta.maxLen
local blocked = meta.paused or (meta.concurrency ~= nil and rcall("LLEN", k.active) >= meta.concurrency)
local ids = {}
-- the ready jobs without a priority of a batch, pushed to `wait` with one
-- LPUSH (and one RPUSH for LIFO) after the loop: pushes at the head and at
-- the tail commute, and LPUSH a b leaves the list LPUSH a, LPUSH b leaves
-- (a single job is pushed at once: no table)
local heads = n > 1 and {} or nil
local tails
local ready = false
local delayed = false

-- a child's parent must exist: checked for the whole batch before writing
local parents = {}
-- the job keys of the custom ids (by job), to check them with one EXISTS
-- when the batch has several jobs and none has a parent or deduplication
-- (those may write other jobs' keys)
local customKeys = n > 1 and {} or nil
local nCustom = 0
for j = 0, n - 1 do
  local base = 3 + j * 10
  local parentJson = ARGV[base + 9]
  if parentJson ~= "" then
    customKeys = nil
    local p = cjson.decode(parentJson)
    local parentKey = p["queueKey"] .. ":" .. p["id"]
    if rcall("EXISTS", parentKey) ~= 1 then
      return -5
    end
    parents[j] = { key = parentKey, queue = p["queueKey"], id = p["id"] }
  elseif customKeys then
    if ARGV[base + 8] ~= "" then
      customKeys = nil
    elseif ARGV[base] ~= "" then
      nCustom = nCustom + 1
      customKeys[j + 1] = prefix .. ARGV[base]
    end
  end
end
-- none of them exists yet: a custom id then exists only when an earlier
-- job of this batch had it (`written`), so no EXISTS per job
local written
if customKeys and nCustom > 0 then
  local list, found = {}, 0
  for j = 1, n do
    if customKeys[j] then
      list[#list + 1] = customKeys[j]
    end
  end
  for i = 1, #list, 5000 do
    found = found + rcall("EXISTS", unpack(list, i, math.min(i + 4999, #list)))
  end
  if found == 0 then
    written = {}
  end
end

-- every job counts once in the id counter, in order: one INCRBY for all
-- (n as sent: a Lua number would be formatted with "%.14g")
local counter = n > 0 and rcall("INCRBY", KEYS[11], ARGV[2]) - n or 0
for j = 0, n - 1 do
  local base = 3 + j * 10
  local customId, name, data, opts = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local timestamp = ARGV[base + 4]
  local delay = tonumber(ARGV[base + 5])
  local priority = tonumber(ARGV[base + 6])
  counter = counter + 1
  local jobId = customId
  local jobKey
  if jobId == "" then
    jobId = string.format("%d", counter)
    jobKey = prefix .. jobId
  else
    jobKey = customKeys and customKeys[j + 1] or prefix .. jobId
  end
  local exists = false
  if customId ~= "" then
    if written then
      exists = written[customId] or false
      written[customId] = true
    else
      exists = rcall("EXISTS", jobKey) == 1
    end
  end
  local de = ARGV[base + 8] ~= "" and cjson.decode(ARGV[base + 8]) or nil
  local taken = false
  if exists then
    local parent = parents[j]
    if parent and not lazy().attachExisting(jobKey, jobId, prefix .. "completed", parent.queue, parent.id, ARGV[base + 9], false, timestamp) then
      -- another parent holds it: nothing written for this job
      jobId = -7
    else
      rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "duplicated", "jobId", jobId)
    end
    taken = true
  elseif de and de["id"] then
    local owner = lazy().deduplicate(k, prefix, de, jobId, name, data, opts, timestamp, delay, maxLen)
    if owner then
      jobId = owner
      taken = true
    end
  end
  if not taken then
    -- the numbers as given: Redis would format number arguments itself
    rcall("HSET", jobKey, "name", name, "data", data, "opts", opts,
      "timestamp", timestamp, "delay", ARGV[base + 5], "priority", ARGV[base + 6])
    if de and de["id"] then
      rcall("HSET", jobKey, "deid", de["id"])
    end
    local parent = parents[j]
    if parent then
      rcall("HSET", jobKey, "parentKey", parent.key, "parent", ARGV[base + 9])
      rcall("SADD", parent.key .. ":dependencies", jobKey)
    end
    rcall("XADD", k.events, "*", "event", "added", "jobId", jobId, "name", name)
    if delay > 0 then
      local score, due = lazy().delayedScore(k.delayed, timestamp, delay)
      rcall("ZADD", k.delayed, score, jobId)
      rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "delayed", "jobId", jobId, "delay", due)
      delayed = true
    else
      if priority > 0 then
        enqueueReady(k, jobId, priority)
      elseif not heads then
        rcall(ARGV[base + 7] == "1" and "RPUSH" or "LPUSH", k.wait, jobId)
      elseif ARGV[base + 7] == "1" then
        tails = tails or {}
        tails[#tails + 1] = jobId
      else
        heads[#heads + 1] = jobId
      end
      rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", jobId)
      ready = true
    end
  end
  ids[#ids + 1] = jobId
end

if heads then
  for i = 1, #heads, 5000 do
    rcall("LPUSH", k.wait, unpack(heads, i, math.min(i + 4999, #heads)))
  end
end
if tails then
  for i = 1, #tails, 5000 do
    rcall("RPUSH", k.wait, unpack(tails, i, math.min(i + 4999, #tails)))
  end
end
if ready and not blocked then
  rcall("ZADD", k.marker, "0", "0")
end
if delayed then
  lazy().refreshDelayMarker(k.marker, k.delayed)
end
return ids
