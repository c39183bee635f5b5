--[[
  Adds the next iteration of a job scheduler when a worker takes the
  current one, leaving what a BullMQ 6 worker leaves: the next job
  `repeat:<scheduler>:<millis>` (delayed, or ready when already due), the
  scheduler's score in `repeat` moved to that time, its iteration count
  `ic` and the id counter incremented, and the `added` plus
  `delayed`/`waiting` events. Nothing is written when the scheduler is gone
  or the taken job is not its current iteration (another worker, or an
  upsert, got there first); an iteration that already exists gets a
  `duplicated` event.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    repeat (schedulers by next time)
    KEYS[12]    id counter
    ARGV[1]     job key prefix
    ARGV[2]     now (ms)
    ARGV[3]     scheduler id
    ARGV[4]     id of the job the worker took
    ARGV[5]     next time (ms) for cron patterns; "" = `every`, computed here
    ARGV[6]     the next job's opts JSON (delay and jobId are set here)
  Output:
    the next job's id, or false when none was added
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/delayedScore"
--- @include "includes/enqueueReady"
--- @include "includes/readMeta"
--- @include "includes/refreshDelayMarker"

local k = queueKeys()
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local schedulerId = ARGV[3]
local current = rcall("ZSCORE", KEYS[11], schedulerId)
if not current then
  return false
end
current = tonumber(current)
local schedulerKey = KEYS[11] .. ":" .. schedulerId
local s = rcall("HMGET", schedulerKey, "name", "data", "every", "offset")
local opts = cjson.decode(ARGV[6])
local repeatOpts = type(opts["repeat"]) == "table" and opts["repeat"] or {}
local every = tonumber(s[3]) or tonumber(repeatOpts["every"])

local nextMillis = tonumber(ARGV[5])
if every then
  -- the slot after the current one; after missed slots, the first slot
  -- after now that keeps the scheduler's offset
  local offset = tonumber(s[4]) or tonumber(repeatOpts["offset"]) or 0
  nextMillis = current + every
  if nextMillis < now then
    local slot = math.floor(now / every) * every + offset
    nextMillis = slot <= now and slot + every or slot
  end
end
if not nextMillis then
  return false
end
local nextText = string.format("%d", nextMillis)

if ARGV[4] ~= "repeat:" .. schedulerId .. ":" .. string.format("%d", current) then
  return false
end
local meta = readMeta(k.meta)
local jobId = "repeat:" .. schedulerId .. ":" .. nextText
local jobKey = prefix .. jobId
if rcall("EXISTS", jobKey) == 1 then
  rcall("XADD", k.events, "MAXLEN", "~", meta.maxLen, "*", "event", "duplicated", "jobId", jobId)
  return false
end

rcall("ZADD", KEYS[11], nextText, schedulerId)
rcall("HINCRBY", schedulerKey, "ic", 1)
rcall("INCR", KEYS[12])
local delay = math.max(nextMillis - now, 0)
local delayText = string.format("%d", delay)
opts["delay"] = delay
opts["jobId"] = jobId
local priority = tonumber(opts["priority"]) or 0
local name = s[1] or ""
rcall("HSET", jobKey, "name", name, "data", s[2] or "{}", "opts", cjson.encode(opts),
  "timestamp", ARGV[2], "delay", delayText, "priority", string.format("%d", priority),
  "rjk", schedulerId)
rcall("XADD", k.events, "*", "event", "added", "jobId", jobId, "name", name)
if delay > 0 then
  local score, due = delayedScore(k.delayed, now, delay)
  rcall("ZADD", k.delayed, score, jobId)
  rcall("XADD", k.events, "MAXLEN", "~", meta.maxLen, "*", "event", "delayed", "jobId", jobId, "delay", due)
  refreshDelayMarker(k.marker, k.delayed)
else
  enqueueReady(k, jobId, priority, opts["lifo"] and "RPUSH" or "LPUSH")
  rcall("XADD", k.events, "MAXLEN", "~", meta.maxLen, "*", "event", "waiting", "jobId", jobId)
  local blocked = meta.paused or (meta.concurrency ~= nil and rcall("LLEN", k.active) >= meta.concurrency)
  if not blocked then
    rcall("ZADD", k.marker, "0", "0")
  end
end
return jobId
