--[[
  Appends a line to a job's log, keeping only the newest keepLogs lines.

  Input:
    KEYS[1] job key
    KEYS[2] job logs key
    ARGV[1] log line
    ARGV[2] keepLogs ("" = keep all)
  Output:
    number of lines kept, -1 missing job
]]
local rcall = redis.call
if rcall("EXISTS", KEYS[1]) == 0 then
  return -1
end
local count = rcall("RPUSH", KEYS[2], ARGV[1])
local keep = tonumber(ARGV[2])
if keep then
  rcall("LTRIM", KEYS[2], -keep, -1)
  return math.min(keep, count)
end
return count
