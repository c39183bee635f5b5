--[[
  workerArgs(a, i, nowText) -> w: reads the six worker arguments that start
  at ARGV index i (token prefix, first token number, lock duration ms,
  limiter max, limiter duration, worker name; "" = none) into the table
  takeJobs expects, with `nowText`, the call's time as the client sent it
  (integer ms as text, so no number is formatted per job).
]]
local function workerArgs(a, i, nowText)
  local w = {
    nowText = nowText,
    tokenPrefix = a[i],
    tokenStart = tonumber(a[i + 1]),
    tokenStartText = a[i + 1],
    lockDurationText = a[i + 2],
    limiterMax = tonumber(a[i + 3]),
    limiterDuration = tonumber(a[i + 4]),
    name = a[i + 5]
  }
  if w.name == "" then
    w.name = nil
  end
  return w
end
