-- Which ModelVersion actions Argo CD offers, following the operator's rules
-- (src/modelrollout/core/controls.py): an action the operator would ignore in the
-- current phase is shown disabled. Only Lua's base library is used.
local status = obj.status or {}
local annotations = (obj.metadata or {}).annotations or {}
local phase = status.phase
if phase == nil or phase == "" then
  phase = "Pending"
end

-- The operator reads modelrollout.io/paused as a yes/no word (true, yes, 1, on).
local truthy = {["true"] = true, ["True"] = true, ["TRUE"] = true, ["yes"] = true,
  ["Yes"] = true, ["YES"] = true, ["1"] = true, ["on"] = true, ["On"] = true, ["ON"] = true}
local paused = truthy[annotations["modelrollout.io/paused"]] == true

-- In flight = the operator's IN_FLIGHT: abort and pause act there (a Canary too: abort
-- restores the stable route first). Promote skips the gates before the canary and the
-- remaining steps during it; it is ignored in Promoting, and nothing acts on a Stable
-- version, baking or not.
local inFlight = phase == "Pending" or phase == "Deploying" or phase == "Evaluating"
  or phase == "Canary" or phase == "Promoting"
local promotable = phase == "Pending" or phase == "Deploying" or phase == "Evaluating"
  or phase == "Canary" or phase == "EvaluationFailed"
local retryable = phase == "EvaluationFailed" or phase == "RolledBack" or phase == "Failed"
  or phase == "Superseded"

local actions = {}
actions["promote"] = {["disabled"] = not promotable, ["displayName"] = "Promote (skip gates)"}
actions["abort"] = {["disabled"] = not inFlight, ["displayName"] = "Abort"}
actions["retry"] = {["disabled"] = not retryable, ["displayName"] = "Retry evaluation"}
actions["pause"] = {["disabled"] = paused or not inFlight, ["displayName"] = "Pause"}
actions["resume"] = {["disabled"] = not paused, ["displayName"] = "Resume"}
return actions
