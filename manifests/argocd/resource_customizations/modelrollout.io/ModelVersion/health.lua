-- Argo CD health of a modelrollout.io ModelVersion, read from what the operator writes:
-- status.phase, status.reason, status.message, status.conditions, status.observedGeneration,
-- status.canary (step and weight) and status.bake (whether the bake window still runs).
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

-- " [step 2/3, 30%]" from status.canary (step counts from 0; when the replicas router cannot
-- reach the step's weight, "[step 1/2, 25% asked, 50% reached]"), "" for what it lacks.
local function canaryPosition(canary)
  if type(canary) ~= "table" then
    return ""
  end
  local parts = {}
  if type(canary.step) == "number" and type(canary.steps) == "number" then
    parts[#parts + 1] = "step " .. (canary.step + 1) .. "/" .. canary.steps
  end
  local asked, reached = canary.weight, canary.achievedWeight
  if type(asked) == "number" and type(reached) == "number" and asked ~= reached then
    parts[#parts + 1] = asked .. "% asked, " .. reached .. "% reached"
  elseif type(reached) == "number" then
    parts[#parts + 1] = reached .. "%"
  elseif type(asked) == "number" then
    parts[#parts + 1] = asked .. "%"
  end
  if #parts == 0 then
    return ""
  end
  local text = parts[1]
  for i = 2, #parts do
    text = text .. ", " .. parts[i]
  end
  return " [" .. text .. "]"
end

if phase == "Canary" then
  -- Part of user traffic reaches this version while its analysis runs.
  if reason == "Paused" then
    hs.status = "Suspended"
  elseif reason == "ModelNotFound" then
    hs.status = "Degraded"
  else
    hs.status = "Progressing"
  end
  hs.message = message .. canaryPosition(status.canary)
  return hs
end

-- status.bake without a result: the bake window runs (reason Promoted on the first pass,
-- Baking after it), as the operator's bake.running reads it.
local bake = status.bake
local baking = type(bake) == "table" and (bake.result == nil or bake.result == "")
if phase == "Stable" and (reason == "Baking" or baking) then
  -- Promoted but on probation: a failing bake interval still rolls it back, so a sync wave
  -- must not move on yet (as Argo Rollouts reports Progressing until fully promoted).
  hs.status = "Progressing"
  hs.message = message
  return hs
end

if phase == "Stable" and reason == "BakeFailedNoPrevious" then
  -- The bake found a regression but the previous version was no longer warm: this version
  -- keeps serving with it, and only a person can fix that.
  hs.status = "Degraded"
  hs.message = message
  return hs
end

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
