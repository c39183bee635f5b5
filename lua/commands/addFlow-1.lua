--[[
  Adds a flow (a tree of jobs, possibly across queues) in one call, leaving
  what BullMQ 6's `FlowProducer.add` leaves: every job hash (children with
  `parentKey` and `parent`), each child's key in its parent's
  `:dependencies` set, parents in `waiting-children` (score = timestamp,
  event `waiting-children`), leaves in `wait`/`prioritized`/`delayed` with
  their events and markers. Nodes come parents first.

  Input:
    KEYS[1]     meta key of the root's queue (routes the call)
    ARGV[1]     number of nodes n
    then 11 values per node:
      queue key prefix ("bull:Q:"), job id, name, data JSON, opts JSON,
      timestamp ms, delay ms, priority, lifo ("1" or ""),
      parent node index (1-based, "0" = none), parent JSON ("" = none)
  Output:
    array of n job ids. A job id that already exists is left as it is
    (event `duplicated`), as BullMQ does; an existing child is attached to
    its parent in this flow (includes/attachExisting), and a parent whose
    children all existed and had completed is released at the end.
]]
local rcall = redis.call
--- @include "includes/pausedOrMaxed"
--- @include "includes/queueNewJob"
--- @include "includes/readMeta"
--- @include "includes/refreshDelayMarker"
--- @include "includes/attachExisting"

local n = tonumber(ARGV[1])
local isParent = {}
for j = 0, n - 1 do
  local parent = tonumber(ARGV[2 + j * 11 + 9])
  if parent > 0 then
    isParent[parent] = true
  end
end

-- per queue: its meta (read once), and whether it got a ready or delayed job
local queues = {}
local function queueOf(base)
  local q = queues[base]
  if not q then
    local k = {
      wait = base .. "wait", active = base .. "active", prioritized = base .. "prioritized",
      events = base .. "events", delayed = base .. "delayed", pc = base .. "pc", marker = base .. "marker"
    }
    q = { k = k, meta = readMeta(base .. "meta"), ready = false, delayed = false }
    queues[base] = q
    queues[#queues + 1] = q
  end
  return q
end

local ids = {}
local keys = {}
-- each node's queue key ("bull:Q") and timestamp
local queueKeysOf, times = {}, {}
for j = 0, n - 1 do
  local b = 2 + j * 11
  local base, jobId, name, data, opts = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local timestamp, delayText, priorityText = ARGV[b + 5], ARGV[b + 6], ARGV[b + 7]
  local parent, parentJson = tonumber(ARGV[b + 9]), ARGV[b + 10]
  local q = queueOf(base)
  local k = q.k
  local jobKey = base .. jobId
  rcall("INCR", base .. "id")
  ids[j + 1] = jobId
  keys[j + 1] = jobKey
  queueKeysOf[j + 1] = string.sub(base, 1, -2)
  times[j + 1] = timestamp
  if rcall("EXISTS", jobKey) == 1 then
    -- kept as it is; a child is attached to its parent in this flow unless
    -- another parent holds it (then it is left out, with no event)
    if parent == 0 or attachExisting(jobKey, jobId, base .. "completed", queueKeysOf[parent], ids[parent],
        parentJson, true, timestamp) then
      rcall("XADD", k.events, "MAXLEN", "~", q.meta.maxLen, "*", "event", "duplicated", "jobId", jobId)
    end
  else
    if parent > 0 then
      local parentKey = keys[parent]
      rcall("HSET", jobKey, "name", name, "data", data, "opts", opts, "timestamp", timestamp,
        "delay", delayText, "priority", priorityText, "parentKey", parentKey, "parent", parentJson)
      rcall("SADD", parentKey .. ":dependencies", jobKey)
    else
      rcall("HSET", jobKey, "name", name, "data", data, "opts", opts, "timestamp", timestamp,
        "delay", delayText, "priority", priorityText)
    end
    rcall("XADD", k.events, "*", "event", "added", "jobId", jobId, "name", name)
    local delay = tonumber(delayText)
    if isParent[j + 1] then
      rcall("ZADD", base .. "waiting-children", timestamp, jobId)
      rcall("XADD", k.events, "MAXLEN", "~", q.meta.maxLen, "*", "event", "waiting-children", "jobId", jobId)
    elseif queueNewJob(k, jobId, timestamp, delay, tonumber(priorityText), ARGV[b + 8] == "1" and "RPUSH" or "LPUSH",
        q.meta.maxLen) then
      q.delayed = true
    else
      q.ready = true
    end
  end
end

-- with every node in, a parent left with nothing pending (its children
-- existed and had completed) is released, unless one of them could not be
-- attached to it
for p in pairs(isParent) do
  local parentKey = keys[p]
  if rcall("HGET", parentKey, "flowAttachmentFailed") then
    rcall("HDEL", parentKey, "flowAttachmentFailed")
  elseif rcall("SCARD", parentKey .. ":dependencies") == 0 then
    releaseParent(queueKeysOf[p], parentKey, ids[p], times[p])
  end
end

for _, q in ipairs(queues) do
  if q.ready and not pausedOrMaxed(q.meta, q.k.active) then
    rcall("ZADD", q.k.marker, "0", "0")
  end
  if q.delayed then
    refreshDelayMarker(q.k.marker, q.k.delayed)
  end
end
return ids
