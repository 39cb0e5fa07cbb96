-- Pipeline step 3: stamp the document and encode it with dkjson.
local json = require("dkjson")

local M = {}

function M.package(doc)
  doc.generator = "polyload pipeline (python -> js -> lua)"
  local keys = {}
  for k in pairs(doc) do keys[#keys + 1] = k end
  table.sort(keys)
  return json.encode(doc, { keyorder = keys })
end

return M
