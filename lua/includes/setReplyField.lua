--[[
  setReplyField(hash, at, field, value): sets `field` in an HGETALL reply
  (a flat field, value list): at index `at` when the field is there (`at` is
  its value's index), appended when it is not (`at` = 0).
]]
local function setReplyField(hash, at, field, value)
  if at > 0 then
    hash[at] = value
  else
    hash[#hash + 1] = field
    hash[#hash + 1] = value
  end
end
