--[[
  Job ids and hashes of several states in one call (what BullMQ's
  Queue.getJobs reads). Lists are read newest first (head) unless asc;
  sorted sets by score, highest first unless asc. Ids whose hash is gone are
  skipped. A BullMQ <= 4 marker (`0:<delay>`) at the tail of `wait` is
  removed (unless it is alone), as BullMQ's getJobs does.

  Input:
    KEYS[1] meta (unused; keeps the script on the queue's slot)
    ARGV[1] job key prefix
    ARGV[2] start
    ARGV[3] end
    ARGV[4] "1" for ascending
    ARGV[5..] state key suffixes: wait, active, paused, prioritized, delayed,
              completed, failed, waiting-children
  Output:
    { id1, hash1, id2, hash2, ... } in state order
]]
local rcall = redis.call
local prefix = ARGV[1]
local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
local asc = ARGV[4] == "1"
local out = {}
for i = 5, #ARGV do
  local key = prefix .. ARGV[i]
  local ids
  if ARGV[i] == "wait" or ARGV[i] == "paused" then
    -- a BullMQ <= 4 marker at the tail is dropped first, as BullMQ's
    -- getJobs does, so that ranges count jobs only
    local tail = rcall("LINDEX", key, -1)
    if tail and string.sub(tail, 1, 2) == "0:" and rcall("LLEN", key) > 1 then
      rcall("RPOP", key)
    end
  end
  if ARGV[i] == "wait" or ARGV[i] == "active" or ARGV[i] == "paused" then
    if asc then
      local from = -(last + 1)
      local to = -(first + 1)
      if last == -1 then
        from = 0
      end
      ids = rcall("LRANGE", key, from, to)
      local reversed = {}
      for j = #ids, 1, -1 do
        reversed[#reversed + 1] = ids[j]
      end
      ids = reversed
    else
      ids = rcall("LRANGE", key, first, last)
    end
  elseif asc then
    ids = rcall("ZRANGE", key, first, last)
  else
    ids = rcall("ZREVRANGE", key, first, last)
  end
  for _, jobId in ipairs(ids) do
    if string.sub(jobId, 1, 2) ~= "0:" then
      local hash = rcall("HGETALL", prefix .. jobId)
      if #hash > 0 then
        out[#out + 1] = jobId
        out[#out + 1] = hash
      end
    end
  end
end
return out
