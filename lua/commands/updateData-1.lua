--[[
  Replaces a job's data.

  Input:
    KEYS[1] job key
    ARGV[1] data JSON
  Output:
    0 ok, -1 missing job
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[1]) == 0 then
  return -1
end
rcall("HSET", KEYS[1], "data", ARGV[1])
return 0
