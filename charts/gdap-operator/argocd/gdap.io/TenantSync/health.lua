-- Argo CD health check for gdap.io/TenantSync (gdap-operator).
-- Add it to argocd-cm as resource.customizations.health.gdap.io_TenantSync (see ../../README.md).
-- Uses only what Argo CD's Lua VM offers without open libraries.
--   Suspended    spec.suspend: true (the schedule is paused; the message says when the last
--                import succeeded).
--   Healthy      Ready=True: the last import succeeded and is recent.
--   Progressing  not reconciled yet, the first import not done (scheduled, running, or retrying
--                a transient error: ImportPending), waiting for the AppConsent
--                (AppConsentNotReady), or deleting.
--   Degraded     Stale=True (no successful import for two scheduled runs), or Synced=False or
--                Ready=False for a reason a person must fix (AccessDenied, SinkFailed,
--                CredentialsInvalid, …) — also while Synced waits for the AppConsent
--                (AppConsentNotReady) if that AppConsent fails on this object's own credentials
--                Secret: Ready then carries its credentials reason (CredentialsInvalid,
--                MfaRequired), as on the other kinds.
-- The reasons are those of src/api/conditions.rs, shared by every kind.

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
  local message = "Pending deletion"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    message = "Pending deletion; blocked by finalizers: " .. table.concat(obj.metadata.finalizers, ", ")
  end
  return result("Progressing", message)
end

if obj.spec ~= nil and obj.spec.suspend == true then
  local message = "TenantSync is suspended (spec.suspend)"
  if obj.status ~= nil and obj.status.lastSuccessfulSyncTime ~= nil then
    message = message .. "; last successful import at " .. obj.status.lastSuccessfulSyncTime
  else
    message = message .. "; no successful import yet"
  end
  return result("Suspended", message)
end

local generation = obj.metadata and obj.metadata.generation
if obj.status == nil or obj.status.observedGeneration == nil then
  return result("Progressing", "Waiting for the operator to reconcile")
end
if generation ~= nil and obj.status.observedGeneration < generation then
  return result("Progressing", "Waiting for the operator to reconcile generation " .. generation)
end

local stale = condition("Stale")
if stale ~= nil and stale.status == "True" then
  return result("Degraded", stale.message)
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
  return result("Healthy", ready.message)
end
if waiting[ready.reason] then
  return result("Progressing", ready.message)
end
return result("Degraded", ready.message)
