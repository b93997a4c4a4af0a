-- Argo CD health check for gdap.io/GdapRelationship (gdap-operator).
-- Add it to argocd-cm as resource.customizations.health.gdap.io_GdapRelationship (see
-- ../../README.md). Uses only what Argo CD's Lua VM offers without open libraries.
--   Healthy      Ready=True: active, every access assignment active (the message tells about a
--                successor in progress, from Renewing, or warns when the relationship ends within
--                30 days, from Expiring).
--   Progressing  the operator or someone else is working: not reconciled yet, waiting for the
--                customer's approval, for Microsoft, for assignments, retrying a transient error,
--                or deleting (with Synced's message while it says what deletion waits for:
--                reason Terminating — the AppConsents relying on the relationship removing their
--                consents first, then Microsoft's termination).
--   Degraded     a person must act: expired or terminated, refused spec, invalid credentials,
--                a refused assignment, a termination that timed out (from Ready, or from Synced
--                when the last reconcile failed before Ready could be re-evaluated); or Ready but
--                the partner user's delegated access does not work (AccessVerified=False, with
--                Microsoft's error: active is Microsoft's word, the check is the proof).
-- managementPolicy: Observe is not Suspended: the health is that of the observed relationship.

-- Reasons (of Ready or Synced) that mean work is under way or someone is being waited for.
local waiting = {
  Reconciling = true, NotCreated = true, NotLocked = true, ApprovalPending = true,
  Activating = true, RelationshipNotActive = true, AssignmentsPending = true,
  Terminating = true, TransientError = true, KubernetesError = true, AssignmentUpdating = true,
  Settling = true, NotConsented = true, ImportPending = true, AppConsentNotReady = true,
  Propagating = true, NotChecked = true, AppNotConsented = true,
  RollingOut = true, Paused = true, CustomerListUnreadable = true,
}
-- Reasons that need a person: Degraded. A reason in neither list counts as Degraded too; the list
-- keeps every reason the operator writes classified (tests/argocd_health.rs checks that).
local failing = {
  Expired = true, Terminated = true, AssignmentFailed = true, InvalidSpec = true,
  RolesImmutable = true, CredentialsInvalid = true, MicrosoftError = true, NotFound = true,
  DisplayNameTaken = true, TerminationTimedOut = true, KubernetesForbidden = true,
  CredentialsNeededForDeletion = true, PropagationTimedOut = true,
  NoConsentCapableRole = true, ServicePrincipalsMissing = true, MfaRequired = true,
  Revoked = true, PrivilegedRoleRequired = true, ExcessAccess = true, PermissionsRemain = true,
  AccessDenied = true, SinkMisconfigured = true, SinkTLSRefused = true, SinkFailed = true,
  Stale = true, AccessRefused = true,
  CustomersFailed = true,
}

local function condition(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function result(status, message)
  return { status = status, message = message }
end

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  local synced = condition("Synced")
  if synced ~= nil and synced.status == "False" and failing[synced.reason] then
    return result("Degraded", synced.message)
  end
  if synced ~= nil and synced.reason == "Terminating" and synced.message ~= nil and synced.message ~= "" then
    return result("Progressing", synced.message)
  end
  local message = "Pending deletion"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    message = "Pending deletion; blocked by finalizers: " .. table.concat(obj.metadata.finalizers, ", ")
  end
  return result("Progressing", message)
end

local generation = obj.metadata and obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil then
  return result("Progressing", "Waiting for the operator to reconcile")
end
if generation ~= nil and obj.status.observedGeneration < generation then
  return result("Progressing", "Waiting for the operator to reconcile generation " .. generation)
end

-- The last reconcile failed for a reason a person must fix (it may leave Ready as it was, e.g.
-- when the credentials fail before Microsoft could be read).
local synced = condition("Synced")
if synced ~= nil and synced.status == "False" and not waiting[synced.reason] then
  return result("Degraded", synced.message)
end

local ready = condition("Ready")
if ready == nil or ready.status == "Unknown" then
  return result("Progressing", "Waiting for the operator to report readiness")
end
if ready.status == "True" then
  local access = condition("AccessVerified")
  if access ~= nil and access.status == "False" then
    return result("Degraded", access.message)
  end
  local renewing = condition("Renewing")
  if renewing ~= nil and renewing.status == "True" then
    return result("Healthy", renewing.message)
  end
  local expiring = condition("Expiring")
  if expiring ~= nil and expiring.status == "True" then
    return result("Healthy", expiring.message)
  end
  return result("Healthy", ready.message)
end
if waiting[ready.reason] then
  local message = ready.message
  if synced ~= nil and synced.status == "False" and waiting[synced.reason] and ready.reason ~= synced.reason then
    message = message .. " (retrying: " .. (synced.message or "") .. ")"
  end
  return result("Progressing", message)
end
return result("Degraded", ready.message)
