--[[
  releaseParent(q, parentKey, parentId, now): moves a flow parent that waits
  for its children out of `waiting-children` (see moveParentToWait).
]]
--- @include "moveParentToWait"
local function releaseParent(q, parentKey, parentId, now)
  if rcall("EXISTS", parentKey) == 1 and rcall("ZREM", q .. ":waiting-children", parentId) == 1 then
    moveParentToWait(q, parentKey, parentId, now)
  end
end
