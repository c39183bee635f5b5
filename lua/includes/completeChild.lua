--[[
  completeChild(parentKey, childKey, returnvalue, now): a flow child
  completed. Records its return value in the parent's `:processed` hash and
  releases the parent once it has no pending dependencies.
]]
--- @include "releaseParent"
local function completeChild(parentKey, childKey, returnvalue, now)
  local depsKey = parentKey .. ":dependencies"
  if rcall("SREM", depsKey, childKey) ~= 1 then
    return
  end
  rcall("HSET", parentKey .. ":processed", childKey, returnvalue)
  if rcall("SCARD", depsKey) == 0 then
    local parentId = string.match(parentKey, "([^:]+)$")
    releaseParent(string.sub(parentKey, 1, #parentKey - #parentId - 1), parentKey, parentId, now)
  end
end
