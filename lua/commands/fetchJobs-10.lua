--[[
  Moves up to N jobs to `active` for one worker and returns them, so a worker
  with free slots fills them in one round trip (BullMQ's moveToActive, batched).

  Input:
    KEYS[1..10] queue keys (includes/queueKeys)
    ARGV[1]     job key prefix
    ARGV[2]     now (ms)
    ARGV[3]     N, how many jobs the worker can start
    ARGV[4..9]  worker arguments (includes/workerArgs)
  Output (packed with cmsgpack):
    { rateLimitTtl, nextDelayedTimestamp, blocked (0/1), id1, hash1, id2, hash2, ... }
]]
local rcall = redis.call
--- @include "includes/queueKeys"
--- @include "includes/readMeta"
--- @include "includes/takeJobs"
--- @include "includes/workerArgs"

local k = queueKeys()
local out = { 0, "0", 0 }
local _, ttl, nextDelayed, blocked = takeJobs(k, ARGV[1], tonumber(ARGV[2]),
  tonumber(ARGV[3]), workerArgs(ARGV, 4, ARGV[2]), readMeta(k.meta), out)
out[1] = ttl
if nextDelayed ~= 0 then
  out[2] = tostring(nextDelayed)
end
if blocked then
  out[3] = 1
end
-- packed: one bulk string for the client to read (worker/reply.rs)
return cmsgpack.pack(out)
