--[[
  failChild(parentJson, childKey, failedReason, now): a flow child failed
  for good; its `parent` field says what that does to the parent:
    fpof (failParentOnFailure): the child goes to the parent's
      `:unsuccessful`, the parent gets `defa` and is moved where a worker
      will take it and fail it;
    cpof (continueParentOnFailure): the reason goes to `:failed` and the
      parent is released now;
    idof / rdof (ignore / remove the dependency): the parent is released
      when nothing else is pending (idof also records the reason);
    none: the parent keeps waiting.
]]
--- @include "moveParentToWait"
--- @include "releaseParent"
local function failChild(parentJson, childKey, failedReason, now)
  local ok, parent = pcall(cjson.decode, parentJson)
  if not ok or type(parent) ~= "table" or not parent["queueKey"] or not parent["id"] then
    return
  end
  local q, parentId = parent["queueKey"], tostring(parent["id"])
  local parentKey = q .. ":" .. parentId
  local depsKey = parentKey .. ":dependencies"
  if not (parent["fpof"] or parent["cpof"] or parent["idof"] or parent["rdof"]) then
    return
  end
  if rcall("SREM", depsKey, childKey) ~= 1 then
    return
  end
  if parent["fpof"] then
    rcall("ZADD", parentKey .. ":unsuccessful", now, childKey)
    if rcall("EXISTS", parentKey) == 1 then
      local reason = "child " .. childKey .. " failed"
      local from = nil
      if rcall("ZREM", q .. ":waiting-children", parentId) == 1 then
        from = "waiting-children"
      elseif rcall("ZREM", q .. ":delayed", parentId) == 1 then
        from = "delayed"
        rcall("HSET", parentKey, "delay", 0)
      end
      if from then
        rcall("HSET", parentKey, "defa", reason)
        moveParentToWait(q, parentKey, parentId, now)
      elseif not rcall("ZSCORE", q .. ":failed", parentId) then
        rcall("HSET", parentKey, "defa", reason)
      end
    end
  elseif parent["cpof"] then
    rcall("HSET", parentKey .. ":failed", childKey, failedReason)
    releaseParent(q, parentKey, parentId, now)
  else
    if rcall("SCARD", depsKey) == 0 then
      releaseParent(q, parentKey, parentId, now)
    end
    if parent["idof"] then
      rcall("HSET", parentKey .. ":failed", childKey, failedReason)
    end
  end
end
