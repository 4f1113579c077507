-- Argo CD health for airlock.dev/AIIncident (status.phase, SPEC §2.3).
-- Open/Contained -> Degraded (an incident needs people), Resolved/Closed -> Healthy,
-- no status yet (just created) -> Progressing. A drill never degrades the application
-- (it must not set off real alerts): an open drill is Progressing until acknowledged.
hs = {}
local phase = nil
if obj.status ~= nil then
  phase = obj.status.phase
end
local label = ""
if obj.spec ~= nil and obj.spec.severity ~= nil then
  label = obj.spec.severity
  if obj.spec.failureMode ~= nil then
    label = label .. " " .. obj.spec.failureMode
  end
  label = label .. " "
end
if obj.spec ~= nil and obj.spec.drill == true then
  label = label .. "drill "
end
local drill = obj.spec ~= nil and obj.spec.drill == true
if drill and (phase == "Open" or phase == "Contained") then
  hs.status = "Progressing"
  hs.message = label .. "incident " .. phase .. ": waiting for an acknowledgement"
elseif phase == "Open" or phase == "Contained" then
  hs.status = "Degraded"
  hs.message = label .. "incident " .. phase
elseif phase == "Resolved" or phase == "Closed" then
  hs.status = "Healthy"
  hs.message = label .. "incident " .. phase
else
  hs.status = "Progressing"
  hs.message = "Waiting for airlock to record the incident"
end
return hs
