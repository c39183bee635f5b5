--[[
  The floor under our scripts: the Redis commands BullMQ 6's layout makes a
  job cost on the gateway's path in published mode (a custom id,
  `{age: 3600}` retention, its end published on `job:<id>` and on a reply
  channel), for a batch of jobs from one call, with what can be one command
  per batch done once (as our scripts do) and no logic around them: no
  checks acted on, no options read, constant arguments. What our scripts
  cost beyond this is their own work (`lua-instructions.sh` prints both);
  nothing in the library runs it.

  KEYS: none (fixed keys under "bull:floor:")
  ARGV[1] data, ARGV[2] opts, ARGV[3] now (ms, text), ARGV[4] the
  retention cutoff (ms, text), ARGV[5] how many ids follow (text),
  ARGV[6...] the batch's job ids
]]
local rcall = redis.call
local q = "bull:floor:"
local data, opts, now, cutoff, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local events, wait, active = q .. "events", q .. "wait", q .. "active"
local ids, jobKeys, lockKeys, depKeys, scored = {}, {}, {}, {}, {}
for i = 6, #ARGV do
  local id = ARGV[i]
  local job = q .. id
  ids[#ids + 1] = id
  jobKeys[#jobKeys + 1] = job
  lockKeys[#lockKeys + 1] = job .. ":lock"
  depKeys[#depKeys + 1] = job .. ":dependencies"
  scored[#scored + 1] = now
  scored[#scored + 1] = id
end

-- add: the ids must be new, the counter moves by the batch
rcall("EXISTS", unpack(jobKeys))
rcall("INCRBY", q .. "id", n)
for i, id in ipairs(ids) do
  rcall("HSET", jobKeys[i], "name", "echo.run", "data", data, "opts", opts,
    "timestamp", now, "delay", "0", "priority", "0")
  rcall("XADD", events, "*", "event", "added", "jobId", id, "name", "echo.run")
  rcall("XADD", events, "MAXLEN", "~", "10000", "*", "event", "waiting", "jobId", id)
end
rcall("LPUSH", wait, unpack(ids))
rcall("ZADD", q .. "marker", "0", "0")

-- fetch: move the batch, read each job, mark it started, lock it
local taken = rcall("LRANGE", wait, -#ids, -1)
rcall("LTRIM", wait, 0, -(#taken + 1))
rcall("LPUSH", active, unpack(taken))
for i, id in ipairs(ids) do
  rcall("HGETALL", jobKeys[i])
  rcall("HSET", jobKeys[i], "processedOn", now, "pb", "floor:w1", "ats", "1")
  rcall("SET", lockKeys[i], "token-1", "PX", "30000")
  rcall("XADD", events, "*", "event", "active", "jobId", id, "prev", "waiting")
end

-- finish: the locks and the jobs' links checked, each result stored and
-- published, the batch retired
rcall("MGET", unpack(lockKeys))
rcall("EXISTS", unpack(depKeys))
local ends = {}
for i, id in ipairs(ids) do
  rcall("HMGET", jobKeys[i], "name", "parentKey", "deid", "atm", "defa", "parent", "priority")
  rcall("LREM", active, "-1", id)
  rcall("PUBLISH", "job:" .. id, '{"type":"result","jobId":"' .. id .. '","result":{"value":42}}')
  rcall("HSET", jobKeys[i], "atm", "1", "returnvalue", '{"value":42}', "finishedOn", now)
  rcall("XADD", events, "MAXLEN", "~", "10000", "*", "event", "completed", "jobId", id,
    "returnvalue", '{"value":42}', "prev", "active")
  ends[i] = '{"jobId":"' .. id .. '","returnvalue":{"value":42}}'
end
rcall("DEL", unpack(lockKeys))
rcall("ZADD", q .. "completed", unpack(scored))
rcall("ZREVRANGEBYSCORE", q .. "completed", cutoff, "-inf", "LIMIT", "0", "1000")
rcall("PUBLISH", "bullmq-wire:gateway:floor", "[" .. table.concat(ends, ",") .. "]")
return #ids
