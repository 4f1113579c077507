-- Argo CD health for airlock.dev/AISystem (status.phase, SPEC §2.1).
-- Contained/ShutDown/Degraded/Invalid -> Degraded (a model is held off, or the spec is refused),
-- Healthy -> Healthy, Unknown or no status yet (the operator has not evaluated it) -> Progressing.
hs = {}
local phase = nil
local message = nil
if obj.status ~= nil then
  phase = obj.status.phase
  if obj.status.containment ~= nil and obj.status.containment.reason ~= nil then
    message = obj.status.containment.reason
  end
  if message == nil and obj.status.conditions ~= nil then
    for _, condition in ipairs(obj.status.conditions) do
      if condition.status ~= "True" and condition.message ~= nil and condition.type == "Ready" then
        message = condition.message
      end
      if condition.status == "True" and condition.message ~= nil and condition.type == "Stalled" then
        message = condition.message
      end
    end
  end
end
if phase == "Healthy" then
  hs.status = "Healthy"
  hs.message = "Healthy"
elseif phase == "Contained" or phase == "ShutDown" or phase == "Degraded" or phase == "Invalid" then
  hs.status = "Degraded"
  hs.message = phase
  if message ~= nil then
    hs.message = phase .. ": " .. message
  end
else
  hs.status = "Progressing"
  hs.message = "Waiting for airlock to evaluate the monitors"
  if phase ~= nil then
    hs.message = phase .. ": waiting for airlock to evaluate the monitors"
  end
end
return hs
