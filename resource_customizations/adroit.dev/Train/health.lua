-- Argo CD health of an Adroit Train (README, "Argo CD"): Progressing while it
-- moves, Suspended while it waits for a person (approval) or for the deploy
-- window, Degraded when it ended RolledBack, Failed or Aborted (the change did
-- not ship), Healthy once Deployed. Only Lua's base and table libraries: Argo CD
-- opens no others.
local hs = {status = "Progressing", message = "Waiting for the operator to pick up the train"}
if obj.status == nil or obj.status.phase == nil then
  return hs
end
local phase = obj.status.phase
local reason = obj.status.reason
local says = obj.status.message
local function tell(prefix)
  if says ~= nil and says ~= "" then
    return prefix .. ": " .. says
  end
  return prefix
end

local degraded = {RolledBack = true, Failed = true, Aborted = true}
local moving = {Staging = true, Verifying = true, Promoting = true}
-- Queued reasons that wait for the clock, not for another train.
local window = {OutsideDeployWindow = true, WaitingForPromotionWindow = true}

if phase == "Deployed" then
  hs.status = "Healthy"
  hs.message = tell("Deployed")
elseif degraded[phase] then
  hs.status = "Degraded"
  hs.message = tell(phase)
elseif phase == "AwaitingApproval" then
  hs.status = "Suspended"
  hs.message = tell("AwaitingApproval")
elseif phase == "Queued" and window[reason] then
  hs.status = "Suspended"
  hs.message = tell("Queued for the deploy window")
elseif phase == "Queued" or moving[phase] then
  hs.status = "Progressing"
  hs.message = tell(phase)
else
  hs.status = "Unknown"
  hs.message = tell("Unknown phase " .. tostring(phase))
end
return hs
