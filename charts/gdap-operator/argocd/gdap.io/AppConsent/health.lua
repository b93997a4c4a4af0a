-- Argo CD health check for gdap.io/AppConsent (gdap-operator).
-- Add it to argocd-cm as resource.customizations.health.gdap.io_AppConsent (see ../../README.md).
-- Uses only what Argo CD's Lua VM offers without open libraries.
--   Healthy      Ready=True: the whole consent is verified in the customer tenant.
--   Progressing  not reconciled yet, waiting for the relationship (or its settle time), being
--                consented, retrying a transient error, or deleting.
--   Degraded     a verified consent is gone (Consented=False, reason Revoked: the customer revoked
--                it; shown even while reconsent: Automatic repairs it), or Ready=False for a reason
--                a person must fix (no consent-capable role, invalid credentials (CredentialsInvalid —
--                also a client secret or certificate Entra refuses, the same reason as on the other
--                kinds) or a sign-in without MFA (MfaRequired), a missing service principal,
--                Microsoft Graph application permissions without a privileged role, an unexplained
--                Graph 403 (AccessDenied), access beyond the spec under managementPolicy: Observe
--                (ExcessAccess), ...), or a deletion blocked by permissions the operator can no
--                longer remove (PermissionsRemain: a customer admin must act, or deletionPolicy:
--                Orphan).
--   A relationship that ended or lost its role behind a consent (RelationshipNotActive) is
--   Progressing, NoConsentCapableRole is Degraded; neither is a revocation.
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
  local blocked = condition("Ready")
  if blocked ~= nil and blocked.status == "False" and blocked.reason == "PermissionsRemain" then
    return result("Degraded", blocked.message)
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

local consented = condition("Consented")
if consented ~= nil and consented.status == "False" and consented.reason == "Revoked" then
  return result("Degraded", consented.message)
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
