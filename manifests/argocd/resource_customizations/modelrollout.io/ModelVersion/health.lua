-- Argo CD health of a modelrollout.io ModelVersion, read from what the operator writes:
-- status.phase, status.reason, status.message, status.conditions, status.observedGeneration.
-- Only Lua's base library is used, so the script also runs from argocd-cm, where Argo CD
-- opens no string or math library.
local hs = {}
local meta = obj.metadata or {}
local status = obj.status

-- "Phase (Reason): message", leaving out what is empty or repeats the phase.
local function explain(phase, reason, message)
  local label = phase
  if reason ~= nil and reason ~= "" and reason ~= phase then
    label = phase .. " (" .. reason .. ")"
  end
  if message ~= nil and message ~= "" then
    return label .. ": " .. message
  end
  return label
end

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
  hs.message = "waiting for the operator to pick up this version"
  return hs
end

-- A status written for an older spec says nothing about the current one.
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
local reason = status.reason
local message = explain(phase, reason, status.message)

if phase == "Stable" or phase == "Superseded" then
  -- Stable serves (also while its deletion is held for want of a successor);
  -- Superseded was replaced on purpose. Neither needs anyone's attention.
  hs.status = "Healthy"
  hs.message = message
  return hs
end

if phase == "EvaluationFailed" or phase == "RolledBack" or phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message
  return hs
end

if phase == "Pending" or phase == "Deploying" or phase == "Evaluating" or phase == "Promoting" then
  if reason == "Paused" then
    hs.status = "Suspended"
  elseif reason == "ModelNotFound" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = message
  return hs
end

-- A phase this script does not know (a newer operator): trust the conditions.
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
hs.message = message
return hs
