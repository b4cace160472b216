-- Argo CD health of an Adroit Flavor (README, "Argo CD"), from its Ready
-- condition once the operator has observed the current generation: Healthy when
-- the revision runs where it belongs, Degraded when its train ended badly and it
-- will not ride again by itself, Progressing otherwise (it waits for or rides a
-- train: the Train's health says whether a person is needed). Only Lua's base
-- and table libraries: Argo CD opens no others.
local hs = {status = "Progressing", message = "Waiting for the operator to observe the Flavor"}
if obj.status == nil then
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
if ready == nil then
  hs.message = "Waiting for the operator to report the Flavor's Ready condition"
  return hs
end
local says = ready.message or ""
if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = says
elseif ready.reason == "NotDeployed" or ready.reason == "RemovalNotDeployed" then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. says
else
  hs.status = "Progressing"
  hs.message = tostring(ready.reason) .. ": " .. says
end
return hs
