-- Argo CD health of a ticklake.dev/v1alpha1 resource (StockStream, S3Sink or AlertSubscription),
-- read from the Ready, Progressing and Degraded conditions the ticklake operator writes in
-- status.conditions. The three kinds share this script byte for byte (Argo CD keys scripts by
-- kind and has no way to share one); operator/tests/argocd_health.rs checks that they do, and
-- runs it against statuses made by the operator's own code.
--
-- Plain Lua 5.1 with the base library only: Argo CD opens no string or math library for health
-- checks unless useOpenLibs is set.
local hs = {}

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end

-- An observedGeneration older than metadata.generation: the status describes an older spec.
local function stale(observed)
  return generation ~= nil and observed ~= nil and observed < generation
end

-- A condition's message, or its reason when it has none.
local function describe(c)
  if c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c.reason ~= nil then
    return c.reason
  end
  return ""
end

local current = true
local found = {}
if obj.status ~= nil then
  if stale(obj.status.observedGeneration) then
    current = false
  end
  if obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type ~= nil then
        found[c.type] = c
      end
      if stale(c.observedGeneration) then
        current = false
      end
    end
  end
end
local ready = found["Ready"]
local progressing = found["Progressing"]
local degraded = found["Degraded"]

if not current or ready == nil or progressing == nil or degraded == nil then
  -- No status yet, or one for an older spec: the operator has not caught up.
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "waiting for the operator to observe generation " .. tostring(generation)
  else
    hs.message = "waiting for the operator to report status"
  end
elseif degraded.status == "True" then
  -- A problem the operator cannot fix by itself (Kafka unreachable, invalid spec, ...).
  hs.status = "Degraded"
  hs.message = describe(degraded)
elseif ready.status == "True" then
  if ready.reason == "ScaledToZero" then
    hs.status = "Suspended"
  else
    hs.status = "Healthy"
  end
  hs.message = describe(ready)
elseif progressing.status == "True" then
  -- Pods starting or a new spec rolling out.
  hs.status = "Progressing"
  hs.message = describe(progressing)
elseif ready.status == "False" then
  -- Not ready although nothing is wrong and nothing is rolling out (DeliveryNotAvailable,
  -- SinkNotFound, TopicMissing): it stays so until something else changes, so waiting for it
  -- (as a sync waits for Progressing resources) would only hang.
  hs.status = "Degraded"
  if ready.reason ~= nil and ready.reason ~= "" then
    hs.message = ready.reason .. ": " .. describe(ready)
  else
    hs.message = describe(ready)
  end
else
  -- Ready=Unknown: the operator does not write it, but it means "not known yet".
  hs.status = "Progressing"
  hs.message = describe(ready)
end
return hs
