--[[
  attachExisting(jobKey, jobId, completedKey, parentQueue, parentId,
  parentJson, deferRelease, now) -> true, or false when another parent
  holds the job.
  A job added as a child of `parentQueue:parentId` (a flow node, or an add
  with a parent) already exists. As BullMQ 6.7.0 does, the job is kept as
  it is and becomes that parent's child, unless a different parent that
  still exists holds it:
  - attached: `parentKey`/`parent` name the new parent. A job that has
    completed counts at once as processed (its return value in the
    parent's `:processed`) and, unless `deferRelease` (a flow, which
    releases its parents once every node is in), the parent is released
    when nothing else is pending; any other job joins the parent's
    `:dependencies`;
  - held elsewhere: nothing changes; with `deferRelease` the new parent is
    marked `flowAttachmentFailed`, so the end of the flow leaves it waiting.
]]
--- @include "releaseParent"
local function attachExisting(jobKey, jobId, completedKey, parentQueue, parentId, parentJson, deferRelease, now)
  local parentKey = parentQueue .. ":" .. parentId
  local held = rcall("HGET", jobKey, "parentKey")
  if held and held ~= parentKey and rcall("EXISTS", held) == 1 then
    if deferRelease then
      rcall("HSET", parentKey, "flowAttachmentFailed", "1")
    end
    return false
  end
  if rcall("ZSCORE", completedKey, jobId) then
    rcall("HSET", parentKey .. ":processed", jobKey, rcall("HGET", jobKey, "returnvalue") or "null")
    if not deferRelease and rcall("SCARD", parentKey .. ":dependencies") == 0 then
      releaseParent(parentQueue, parentKey, parentId, now)
    end
  else
    rcall("SADD", parentKey .. ":dependencies", jobKey)
  end
  rcall("HSET", jobKey, "parentKey", parentKey, "parent", parentJson)
  return true
end
