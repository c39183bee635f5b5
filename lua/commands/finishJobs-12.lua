--[[
  Settles a batch of jobs a worker has finished processing, then fetches the
  next jobs for its free slots, all in one call. Each outcome leaves exactly
  the state BullMQ 6 leaves for it:
    completed -> moveToFinished (completed)
    failed    -> moveToFinished (failed), with `retries-exhausted` when due
    delayed   -> moveToDelayed (a retry after a backoff delay)
    retry     -> retryJob (a retry without delay)
    handback  -> back to the front of `wait` (or of its priority band) with
                 no attempt counted: a closing worker returns the job
  Metrics and the wake-up marker are done once per call; each finishing
  event trims the stream (MAXLEN ~) as it is added.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    completed
    KEYS[12]    failed
    ARGV[1]     job key prefix
    ARGV[2]     now (ms)
    ARGV[3]     N, how many jobs to fetch afterwards (0 = none)
    ARGV[4..9]  worker arguments (includes/workerArgs)
    ARGV[10]    metrics max data points ("" = metrics off)
    ARGV[11]    "1" = publish each completion on `job:<jobId>` (and on the
                outcome's channel, if any) as {"type":"result","jobId":..,
                "result":<returnvalue>}, and each final failure as
                {"type":"error","jobId":..,"error":<reason>,
                "attemptsMade":n}, before the job's hash is written
                ("" = do not). An outcome's own channel gets one message
                per call: the end, or the JSON array of the ends of the
                call's jobs with that channel, after the settling
    ARGV[12]    number of outcomes m
    then 10 values per outcome:
      jobId, lock token, kind (completed|failed|delayed|retry|handback),
      value (returnvalue JSON for completed, error message otherwise),
      stacktrace JSON ("" = leave as is),
      delay ms (delayed), push command LPUSH/RPUSH (retry), or a
        channel to publish the end on as well (completed, failed; "" =
        none, see ARGV[11]),
      keep count ("" = keep all), keep age seconds ("" = none),
      keep age limit, attempts (opts.attempts)
  Output (packed with cmsgpack):
    { {code per outcome}, rateLimitTtl, nextDelayedTimestamp, blocked, id1, hash1, ... }
    codes: 0 ok, -1 missing job, -2 missing lock, -3 not active,
           -4 pending children, -6 lock owned by another token,
           -9 failed children
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/enqueueReady"
--- @include "includes/pausedOrMaxed"
--- @include "includes/readMeta"
--- @include "includes/takeJobs"
--- @include "includes/workerArgs"

-- The helpers that only some outcomes need (delayed retries, flow parents,
-- deduplication, keep policies, metrics) are defined when first needed: a
-- Lua function definition runs on every call of a script (~700 Redis
-- instructions each), and a plain completion needs none of them. Their
-- includes come after every other, so that what they share with the
-- helpers above is defined once, above, where both see it.
local later
local function lazy()
  if not later then
    --- @include "includes/collectMetrics"
    --- @include "includes/completeChild"
    --- @include "includes/delayedScore"
    --- @include "includes/failChild"
    --- @include "includes/refreshDelayMarker"
    --- @include "includes/releaseDedupKey"
    --- @include "includes/requeueDedupNext"
    later = {
      collectMetrics = collectMetrics, completeChild = completeChild, delayedScore = delayedScore,
      failChild = failChild, refreshDelayMarker = refreshDelayMarker, releaseDedupKey = releaseDedupKey,
      requeueDedupNext = requeueDedupNext
    }
  end
  return later
end
-- Keep policies are common (an age limit on every job is the gateway's
-- default): their two helpers alone, not the nine above.
local keeping
local function keep()
  if not keeping then
    --- @include "includes/trimFinished"
    keeping = { removeJobKeys = removeJobKeys, trimFinished = trimFinished }
  end
  return keeping
end

local k = queueKeys()
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
-- `now` as Redis arguments take it (a number would be formatted per call)
local nowText = ARGV[2]
local fetchCount = tonumber(ARGV[3])
local maxMetrics = ARGV[10] ~= "" and tonumber(ARGV[10])
local publishResults = ARGV[11] == "1"
local m = tonumber(ARGV[12])
local codes = {}
-- jobs completed and failed for good in this call (tables are kept to a
-- minimum: each costs Redis ~1k instructions to make and collect)
local nCompleted, nFailed = 0, 0
-- keep policies met in this call, by kind and limits (made when first needed)
local trims
-- the policy recorded last: kind, count, age, limit (as sent; locals, not
-- a table: a table that grows is rehashed at each power of two)
local lastKind, lastCount, lastAge, lastLimit
local meta = readMeta(k.meta)
local maxLen = meta.maxLen
local anyDelayed = false
local readyBlocked = nil

-- Redis commands that take many members, in slices Lua's unpack can hold.
local function callMany(cmd, key, list)
  for i = 1, #list, 5000 do
    if key then
      rcall(cmd, key, unpack(list, i, math.min(i + 4999, #list)))
    else
      rcall(cmd, unpack(list, i, math.min(i + 4999, #list)))
    end
  end
end

-- 1. read every job once and check what BullMQ checks first: the job
-- exists, a completing flow parent has no pending or failed children, the
-- lock is ours. Locks are read with one MGET and released with one DEL.
local jobs = {}
local lockKeys, lockOwners, depKeys = {}, {}, {}
for j = 0, m - 1 do
  -- the outcome's values stay in ARGV from index b on (a table of all ten
  -- per job would cost an allocation the size of the rest of the call)
  local b = 13 + j * 10
  local jobKey = prefix .. ARGV[b]
  -- every field a job's table gets, set at once (a field added later
  -- would regrow the table); every job hash has a name: one read for
  -- existence and what comes later
  local o = { b = b, id = ARGV[b], kind = ARGV[b + 2], token = ARGV[b + 1], key = jobKey, code = false,
    attrs = rcall("HMGET", jobKey, "name", "parentKey", "deid", "atm", "defa", "parent", "priority") }
  if not o.attrs[1] then
    o.code = -1
  else
    if o.kind == "completed" then
      depKeys[#depKeys + 1] = o.key .. ":dependencies"
      depKeys[#depKeys + 1] = o.key .. ":unsuccessful"
    end
    if o.token ~= "0" then
      lockKeys[#lockKeys + 1] = o.key .. ":lock"
      lockOwners[#lockOwners + 1] = o
    end
  end
  jobs[#jobs + 1] = o
end
local withChildren = 0
for i = 1, #depKeys, 5000 do
  withChildren = withChildren + rcall("EXISTS", unpack(depKeys, i, math.min(i + 4999, #depKeys)))
end
if withChildren > 0 then
  for _, o in ipairs(jobs) do
    if not o.code and o.kind == "completed" then
      if rcall("SCARD", o.key .. ":dependencies") ~= 0 then
        o.code = -4
      elseif rcall("ZCARD", o.key .. ":unsuccessful") ~= 0 then
        o.code = -9
      end
    end
  end
end
local released, unstalled = {}, {}
for i = 1, #lockKeys, 5000 do
  local current = rcall("MGET", unpack(lockKeys, i, math.min(i + 4999, #lockKeys)))
  for n, token in ipairs(current) do
    local o = lockOwners[i + n - 1]
    if not o.code then
      if token == o.token then
        released[#released + 1] = lockKeys[i + n - 1]
        unstalled[#unstalled + 1] = o.id
      elseif token then
        o.code = -6
      else
        o.code = -2
      end
    end
  end
end
if #released > 0 then
  callMany("DEL", nil, released)
  callMany("SREM", k.stalled, unstalled)
end

-- the ends to publish on outcomes' own channels: those on the first
-- channel met (a gateway's jobs share its reply channel; a lone end is
-- kept as a string, not a table), then those on others, by channel
local replyChannel, replyList, otherReplies

-- 2. move each job out of active to where its outcome sends it
-- `now, id` pairs for the finished sets, by kind (made when first needed)
local finishedIds = {}
local function settle(o)
  local jobId, jobKey, kind, attrs, b = o.id, o.key, o.kind, o.attrs, o.b
  local value, stack, extra = ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  if rcall("LREM", k.active, "-1", jobId) < 1 then
    return -3
  end
  local attemptsMade = (tonumber(attrs[4]) or 0) + 1
  -- A first attempt (no "atm" yet) is the common case: its text is a
  -- constant, and string.format costs ~0.2 us a call in Redis' Lua.
  local atm = attrs[4] and string.format("%d", attemptsMade) or "1"
  -- the failure fields (delayed, retry and failed outcomes)
  local failure
  if kind ~= "completed" and kind ~= "handback" then
    failure = { "failedReason", value }
    if stack ~= "" then
      failure[3] = "stacktrace"
      failure[4] = stack
    end
  end

  if kind == "delayed" then
    local delay = tonumber(extra)
    local score, due = lazy().delayedScore(k.delayed, now, delay)
    rcall("HSET", jobKey, "atm", atm, "delay", extra, unpack(failure))
    rcall("ZADD", k.delayed, score, jobId)
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "delayed", "jobId", jobId, "delay", due)
    anyDelayed = true
    return 0
  end

  if kind == "retry" or kind == "handback" then
    if readyBlocked == nil then
      readyBlocked = pausedOrMaxed(meta, k.active)
    end
    local priority = tonumber(attrs[7]) or 0
    if kind == "retry" then
      enqueueReady(k, jobId, priority, extra)
      rcall("HSET", jobKey, "atm", atm, unpack(failure))
    elseif priority > 0 then
      rcall("ZADD", k.prioritized, priority * 0x100000000, jobId)
    else
      rcall("RPUSH", k.wait, jobId)
    end
    if not readyBlocked then
      rcall("ZADD", k.marker, "0", "0")
    end
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "waiting", "jobId", jobId, "prev", "active")
    return 0
  end

  -- completed or failed for good
  if publishResults then
    -- first, so a subscriber has the end before the hash's own keyspace
    -- event (or its removal) asks it to read the job
    local message
    if kind == "completed" then
      message = '{"type":"result","jobId":' .. cjson.encode(jobId) .. ',"result":' .. value .. '}'
    else
      message = '{"type":"error","jobId":' .. cjson.encode(jobId) .. ',"error":' ..
        cjson.encode(value) .. ',"attemptsMade":' .. atm .. '}'
    end
    rcall("PUBLISH", "job:" .. jobId, message)
    if extra ~= "" then
      -- the outcome's own channel (a gateway's reply channel) gets one
      -- message per call, not per job: see step 3
      if not replyChannel then
        replyChannel, replyList = extra, message
      elseif extra == replyChannel then
        if type(replyList) == "string" then
          replyList = { replyList, message }
        else
          replyList[#replyList + 1] = message
        end
      else
        otherReplies = otherReplies or {}
        local list = otherReplies[extra]
        if not list then
          list = {}
          otherReplies[extra] = list
        end
        list[#list + 1] = message
      end
    end
  end
  if attrs[3] then
    lazy().releaseDedupKey(prefix, attrs[3], jobId)
    lazy().requeueDedupNext(k, prefix, attrs[3], now, maxLen)
  end
  if attrs[2] and kind == "completed" then
    lazy().completeChild(attrs[2], jobKey, value, now)
  elseif attrs[6] and kind == "failed" then
    lazy().failChild(attrs[6], jobKey, value, now)
  end
  local keepCount, keepAge, keepLimit = ARGV[b + 6], ARGV[b + 7], ARGV[b + 8]
  -- "" (keep all, no age limit) is the common case: no number to parse
  local count = keepCount ~= "" and tonumber(keepCount)
  if count == 0 then
    keep().removeJobKeys(jobKey)
  else
    local ids = finishedIds[kind]
    if not ids then
      ids = {}
      finishedIds[kind] = ids
    end
    ids[#ids + 1] = nowText
    ids[#ids + 1] = jobId
    if kind == "failed" then
      rcall("HSET", jobKey, "atm", atm, "finishedOn", nowText, unpack(failure))
      if attrs[5] then
        rcall("HDEL", jobKey, "defa")
      end
    else
      rcall("HSET", jobKey, "atm", atm, "returnvalue", value, "finishedOn", nowText)
    end
    -- jobs of a batch mostly share their policy: it is recorded once
    -- per run of equal ones (the ARGV strings compare by reference)
    if keepAge ~= "" or (count and count > 0) then
      if kind ~= lastKind or keepCount ~= lastCount or keepAge ~= lastAge or keepLimit ~= lastLimit then
        lastKind, lastCount, lastAge, lastLimit = kind, keepCount, keepAge, keepLimit
        trims = trims or {}
        trims[kind .. ":" .. keepCount .. ":" .. keepAge .. ":" .. keepLimit] =
          { kind == "completed" and KEYS[11] or KEYS[12], count, tonumber(keepAge), tonumber(keepLimit) or 1000,
            keepLimit ~= "" and keepLimit or "1000" }
      end
    end
  end
  -- the stream is trimmed by the finishing events themselves (BullMQ
  -- trims once more with XTRIM; approximate trimming leaves the same)
  rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", kind, "jobId", jobId,
    kind == "completed" and "returnvalue" or "failedReason", value, "prev", "active")
  if kind == "failed" and attemptsMade >= (tonumber(ARGV[b + 9]) or 0) then
    rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "retries-exhausted", "jobId", jobId, "attemptsMade", atm)
  end
  if kind == "completed" then
    nCompleted = nCompleted + 1
  else
    nFailed = nFailed + 1
  end
  return 0
end

for i, o in ipairs(jobs) do
  codes[i] = o.code or settle(o)
end
-- 3. once per call: the gathered ends, the finished sets, then their keep
-- policies
-- one message per channel: the JSON array of the ends when there are
-- several
if replyChannel then
  rcall("PUBLISH", replyChannel, type(replyList) == "string" and replyList or "[" .. table.concat(replyList, ",") .. "]")
end
if otherReplies then
  for channel, list in pairs(otherReplies) do
    rcall("PUBLISH", channel, #list == 1 and list[1] or "[" .. table.concat(list, ",") .. "]")
  end
end
for kind, ids in pairs(finishedIds) do
  callMany("ZADD", kind == "completed" and KEYS[11] or KEYS[12], ids)
end

if trims then
  for _, t in pairs(trims) do
    keep().trimFinished(t[1], prefix, now, t[2], t[3], t[4], t[5])
  end
end
if maxMetrics then
  if nCompleted > 0 then
    lazy().collectMetrics(prefix .. "metrics:completed", nCompleted, maxMetrics, now)
  end
  if nFailed > 0 then
    lazy().collectMetrics(prefix .. "metrics:failed", nFailed, maxMetrics, now)
  end
end

local out = { codes, 0, "0", 0 }
local taken, ttl, nextDelayed, blocked = 0, 0, 0, false
if fetchCount > 0 then
  taken, ttl, nextDelayed, blocked = takeJobs(k, prefix, now, fetchCount, workerArgs(ARGV, 4, nowText), meta, out)
  out[2] = ttl
  if nextDelayed ~= 0 then
    out[3] = tostring(nextDelayed)
  end
  if blocked then
    out[4] = 1
  end
end
if anyDelayed then
  -- report the earliest due time even without a fetch: the worker may have
  -- popped the marker this sets before it reads this reply
  local due = lazy().refreshDelayMarker(k.marker, k.delayed)
  if due and out[3] == "0" then
    out[3] = tostring(due)
  end
end
if taken == 0 and ttl == 0 and not blocked and (fetchCount == 0 or nextDelayed == 0)
  and nCompleted + nFailed > 0
  and rcall("LLEN", k.wait) == 0 and rcall("LLEN", k.active) == 0
  and rcall("ZCARD", k.prioritized) == 0 then
  rcall("XADD", k.events, "*", "event", "drained")
end
-- packed: one bulk string for the client to read (worker/reply.rs)
return cmsgpack.pack(out)
