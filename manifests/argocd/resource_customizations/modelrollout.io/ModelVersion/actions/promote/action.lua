-- Request "promote" from the operator: set modelrollout.io/promote to a value it has not seen.
-- The operator acts once per distinct value and records it in status.handled.promote, so a
-- new request needs a new value: the current UTC time, made unique if it repeats.
local os = require("os")
local key = "modelrollout.io/promote"
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ")
local value = stamp
local n = 1
while obj.metadata.annotations[key] == value do
  n = n + 1
  value = stamp .. "-" .. n
end
obj.metadata.annotations[key] = value
return obj
