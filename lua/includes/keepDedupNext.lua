--[[
  keepDedupNext(k, prefix, de, owner, jobId, name, data, opts, maxLen) ->
  true when the new job was kept to run after the window's owner: with
  keepLastIfActive and the owner active, the latest duplicate is stored in
  `dn:<id>` (replacing an earlier one) and added when the owner finishes;
  the window stops expiring meanwhile. Emits `deduplicated`.
]]
local function keepDedupNext(k, prefix, de, owner, jobId, name, data, opts, maxLen)
  if not (de["keepLastIfActive"] and owner) then
    return false
  end
  local pos = redis.pcall("LPOS", k.active, owner)
  if type(pos) == "table" and pos.err then
    pos = nil
    for _, id in ipairs(rcall("LRANGE", k.active, 0, -1)) do
      if id == owner then
        pos = true
        break
      end
    end
  end
  if not pos then
    return false
  end
  local nextKey = prefix .. "dn:" .. de["id"]
  rcall("DEL", nextKey)
  rcall("HSET", nextKey, "name", name, "data", data, "opts", cjson.encode(cjson.decode(opts)), "jid", jobId)
  rcall("PERSIST", prefix .. "de:" .. de["id"])
  rcall("XADD", k.events, "MAXLEN", "~", maxLen, "*", "event", "deduplicated", "jobId", owner,
    "deduplicationId", de["id"], "deduplicatedJobId", jobId)
  return true
end
