-- Argo CD health check for gdap.io/GdapFleet (gdap-operator).
-- Add it to argocd-cm as resource.customizations.health.gdap.io_GdapFleet (see ../../README.md).
-- Uses only what Argo CD's Lua VM offers without open libraries.
--   Suspended    spec.rollout.paused: true (the fleet writes nothing; the message is Ready's).
--   Healthy      Ready=True: every covered customer's relationship is active (AllActive).
--   Progressing  not reconciled yet; relationships awaiting approval or customers waiting for
--                rollout room or prunes (RollingOut); Partner Center's customer list unreadable
--                for now (CustomerListUnreadable); a Kubernetes error being retried; deleting.
--   Degraded     Ready=False for a reason a person must fix: customers' relationships failed,
--                expired or were terminated (CustomersFailed), invalid per-customer overrides
--                (InvalidSpec), or any other reason not listed as waiting.
-- The reasons are those of src/api/conditions.rs, shared by every kind.

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
  return result("Progressing", "Pending deletion: the fleet prunes or lets go of its customers' objects first")
end

local ready = condition("Ready")
if obj.spec ~= nil and obj.spec.rollout ~= nil and obj.spec.rollout.paused then
  local message = "spec.rollout.paused: the fleet writes nothing"
  if ready ~= nil and ready.message ~= nil then
    message = ready.message
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
