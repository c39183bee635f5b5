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
--- @include "includes/addSchedulerJob"
--- @include "includes/everySlot"
--- @include "includes/readMeta"

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
  nextMillis = everySlot(current, every, now, s[4] or repeatOpts["offset"])
end
if not nextMillis then
  return false
end
if ARGV[4] ~= "repeat:" .. schedulerId .. ":" .. string.format("%d", current) then
  return false
end
local meta = readMeta(k.meta)
local jobId = "repeat:" .. schedulerId .. ":" .. string.format("%d", nextMillis)
if rcall("EXISTS", prefix .. jobId) == 1 then
  rcall("XADD", k.events, "MAXLEN", "~", meta.maxLen, "*", "event", "duplicated", "jobId", jobId)
  return false
end
rcall("ZADD", KEYS[11], string.format("%d", nextMillis), schedulerId)
rcall("HINCRBY", schedulerKey, "ic", 1)
rcall("INCR", KEYS[12])
addSchedulerJob(k, prefix, schedulerId, jobId, s[1] or "", s[2] or "{}", opts, now,
  math.max(nextMillis - now, 0), meta)
return jobId
