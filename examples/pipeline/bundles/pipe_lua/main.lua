-- Pipeline step 3: encode the document with dkjson and hand it to .NET.
local json = require("dkjson")
local polyload = require("polyload")

local M = {}

function M.package(doc)
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = k end
  table.sort(keys)
  return polyload.call("pipe_cs.stamp", json.encode(doc, { keyorder = keys }))
end

return M
