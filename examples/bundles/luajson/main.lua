-- luajson: JSON text <-> structured values, with dkjson doing the work.
local json = require("dkjson")
local polyload = require("polyload")

local M = {}

-- polyload hands JSON null in as polyload.null; dkjson spells it json.null.
local function to_dkjson(v)
  if v == polyload.null then
    return json.null
  end
  if type(v) == "table" then
    local out = setmetatable({}, getmetatable(v))
    for k, x in pairs(v) do
      out[k] = to_dkjson(x)
    end
    return out
  end
  return v
end

--- encode(json) -> str: compact JSON text, object keys sorted.
function M.encode(value)
  local keys = {}
  local function collect(v)
    if type(v) == "table" then
      for k, x in pairs(v) do
        if type(k) == "string" then keys[#keys + 1] = k end
        collect(x)
      end
    end
  end
  collect(value)
  table.sort(keys)
  return json.encode(to_dkjson(value), { keyorder = keys })
end

--- decode(str) -> json: parses JSON text; a syntax error is a Lua error.
function M.decode(text)
  local value, pos, err = json.decode(text, 1, polyload.null)
  if err then
    error("invalid JSON at position " .. tostring(pos) .. ": " .. err, 2)
  end
  return value
end

return M
