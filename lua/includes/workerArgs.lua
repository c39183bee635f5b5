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
    -- "" (no limiter) needs no number parsing
    limiterMax = a[i + 3] ~= "" and tonumber(a[i + 3]) or nil,
    limiterDuration = a[i + 4] ~= "" and tonumber(a[i + 4]) or nil,
    name = a[i + 5]
  }
  if w.name == "" then
    w.name = nil
  end
  return w
end
