-- Argo CD health of a modelrollout.io Model, read from the summary the operator writes:
-- status.phase (Ready, Progressing, Degraded, NoStableVersion), status.message,
-- status.canaryWeight, status.conditions and status.observedGeneration.
-- Only Lua's base library is used, so the script also runs from argocd-cm.
local hs = {}
local meta = obj.metadata or {}
local status = obj.status

local function condition(kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

if status == nil or status.phase == nil or status.phase == "" then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to pick up this model"
  return hs
end

-- Deletion also raises metadata.generation (the API server counts the deletionTimestamp
-- as a change), so the guard does not apply to an object being deleted.
local generation = meta.generation
local deleting = meta.deletionTimestamp ~= nil
if not deleting and generation ~= nil
    and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "waiting for the operator to observe generation " .. generation
  return hs
end

local phase = status.phase
local message = phase
if status.message ~= nil and status.message ~= "" then
  message = phase .. ": " .. status.message
end

-- While a canary runs, the share of user traffic the candidate gets (Model.status.canaryWeight).
if type(status.canaryWeight) == "number" and status.canaryWeight > 0 then
  message = message .. " [" .. status.canaryWeight .. "% of traffic]"
end

if phase == "Ready" then
  hs.status = "Healthy"
elseif phase == "Progressing" or phase == "NoStableVersion" then
  -- NoStableVersion: nothing serves yet and nothing is on its way; it waits for a version.
  hs.status = "Progressing"
elseif phase == "Degraded" then
  hs.status = "Degraded"
else
  local degraded = condition("Degraded")
  local progressing = condition("Progressing")
  local ready = condition("Ready")
  if degraded ~= nil and degraded.status == "True" then
    hs.status = "Degraded"
  elseif progressing ~= nil and progressing.status == "True" then
    hs.status = "Progressing"
  elseif ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
  else
    hs.status = "Unknown"
  end
end
hs.message = message
return hs
