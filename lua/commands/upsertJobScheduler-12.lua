--[[
  Creates or replaces a job scheduler and adds its next iteration, leaving
  what BullMQ 6's `Queue.upsertJobScheduler` leaves: the scheduler hash
  (`repeat:<id>`: name, tz, limit, pattern, startDate, endDate, every,
  offset, template opts and data, iteration count `ic`), its score in
  `repeat`, and the iteration job. A pending iteration (delayed, prioritized
  or waiting) is replaced; for `every` the replacement keeps its slot unless
  `every` changed. An iteration id already taken by an active or finished
  job moves an `every` scheduler to the next free slot (at most 32 slots
  ahead) and refuses a cron scheduler.

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    KEYS[11]    repeat (schedulers by next time)
    KEYS[12]    id counter
    ARGV[1]     job key prefix
    ARGV[2]     now (ms)
    ARGV[3]     scheduler id
    ARGV[4]     next time (ms) for cron patterns; "" = `every`, computed here
    ARGV[5]     scheduler JSON {name, tz?, pattern?, every?, limit?, startDate?,
                endDate?, offset?}
    ARGV[6]     template data JSON
    ARGV[7]     template opts JSON
    ARGV[8]     the iteration's opts JSON (delay and jobId are set here)
  Output:
    { iteration job id, delay }, or -10 (cron: id taken), -11 (every: no
    free slot)
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/addSchedulerJob"
--- @include "includes/everySlot"
--- @include "includes/readMeta"
--- @include "includes/removeJobKeys"

local k = queueKeys()
local prefix = ARGV[1]
local now = tonumber(ARGV[2])
local schedulerId = ARGV[3]
local schedulerKey = KEYS[11] .. ":" .. schedulerId
local scheduler = cjson.decode(ARGV[5])
local opts = cjson.decode(ARGV[8])
local meta = readMeta(k.meta)

-- an integer as Redis arguments take it
local function int(n)
  return string.format("%d", n)
end

local prev = tonumber(rcall("ZSCORE", KEYS[11], schedulerId))
local every = tonumber(scheduler["every"])
local repeatOffset = type(opts["repeat"]) == "table" and opts["repeat"]["offset"] or nil
local offset = tonumber(scheduler["offset"]) or tonumber(repeatOffset) or 0
local nextMillis = tonumber(ARGV[4])
local everyChanged = false
if every then
  local after = prev
  if prev and tonumber(rcall("HGET", schedulerKey, "every")) ~= every then
    after = nil
    everyChanged = true
  end
  nextMillis, offset = everySlot(after, every, now, offset, scheduler["startDate"])
end

-- the pending iteration is replaced (an active or finished one stays)
local replaced = false
if prev then
  local pendingId = "repeat:" .. schedulerId .. ":" .. int(prev)
  if rcall("EXISTS", prefix .. pendingId) == 1 then
    replaced = rcall("ZREM", k.delayed, pendingId) == 1
      or rcall("ZREM", k.prioritized, pendingId) == 1
      or (not meta.paused and rcall("LREM", k.wait, 1, pendingId) > 0)
    if replaced then
      local dedupId = rcall("HGET", prefix .. pendingId, "deid")
      if dedupId and rcall("GET", prefix .. "de:" .. dedupId) == pendingId then
        rcall("DEL", prefix .. "de:" .. dedupId)
      end
      removeJobKeys(prefix .. pendingId)
    end
  end
end
if replaced then
  if every and not everyChanged then
    nextMillis = prev
  end
else
  scheduler["offset"] = offset
end

local jobId = "repeat:" .. schedulerId .. ":" .. int(nextMillis)
if rcall("EXISTS", prefix .. jobId) == 1 then
  if not every then
    if not replaced then
      return -10
    end
  else
    local scanned = 0
    repeat
      nextMillis = nextMillis + every
      jobId = "repeat:" .. schedulerId .. ":" .. int(nextMillis)
      scanned = scanned + 1
    until rcall("EXISTS", prefix .. jobId) == 0 or scanned >= 32
    if rcall("EXISTS", prefix .. jobId) == 1 then
      return -11
    end
  end
end

-- the scheduler hash, rewritten whole; offset and ic carry over
rcall("ZADD", KEYS[11], int(nextMillis), schedulerId)
local fields = { "name", scheduler["name"] }
local function put(field, value)
  if value ~= nil and value ~= cjson.null then
    fields[#fields + 1] = field
    fields[#fields + 1] = type(value) == "number" and value == math.floor(value) and int(value) or tostring(value)
  end
end
put("tz", scheduler["tz"])
put("limit", scheduler["limit"])
put("pattern", scheduler["pattern"])
put("startDate", scheduler["startDate"])
put("endDate", scheduler["endDate"])
put("every", scheduler["every"])
put("offset", scheduler["offset"] or tonumber(rcall("HGET", schedulerKey, "offset")))
-- the template opts as cjson writes them (as BullMQ stores them)
local templateOpts = cjson.encode(cjson.decode(ARGV[7]))
if templateOpts ~= "{}" then
  put("opts", templateOpts)
end
if ARGV[6] ~= "{}" then
  put("data", ARGV[6])
end
put("ic", rcall("HGET", schedulerKey, "ic") or 1)
rcall("DEL", schedulerKey)
rcall("HSET", schedulerKey, unpack(fields))

rcall("INCR", KEYS[12])
local delay = math.max(nextMillis - now, 0)
addSchedulerJob(k, prefix, schedulerId, jobId, scheduler["name"], ARGV[6], opts, now, delay, meta)
return { jobId, delay }
