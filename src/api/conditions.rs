//! Condition types and reasons: the vocabulary `kubectl wait` and dashboards rely on.
//!
//! Every condition the operator writes uses a type and a reason from this module, so that the set
//! is documented in one place and never drifts between controllers.

/// Condition types.
pub mod types {
    /// The object is fully reconciled and usable.
    pub const READY: &str = "Ready";
    /// The last reconcile applied the spec to Microsoft without error.
    pub const SYNCED: &str = "Synced";
    /// The customer approved the GDAP relationship.
    pub const APPROVED: &str = "Approved";
    /// Every access assignment is active.
    pub const ACCESS_ASSIGNED: &str = "AccessAssigned";
    /// The relationship ends within 30 days.
    pub const EXPIRING: &str = "Expiring";
    /// A successor relationship is being requested, approved or handed over to.
    pub const RENEWING: &str = "Renewing";
    /// The prerequisites of an application consent hold.
    pub const PREREQUISITES_MET: &str = "PrerequisitesMet";
    /// The resource service principals exist in the customer tenant.
    pub const SERVICE_PRINCIPALS_PRESENT: &str = "ServicePrincipalsPresent";
    /// The application is consented in the customer tenant.
    pub const CONSENTED: &str = "Consented";
    /// The last successful import is older than expected.
    pub const STALE: &str = "Stale";
    /// The partner user's delegated access to the customer works: on a slow schedule
    /// (`--access-verify-interval`) the operator gets the user's delegated Graph token for the
    /// customer tenant and makes one read there. `Unknown` until it can be checked.
    pub const ACCESS_VERIFIED: &str = "AccessVerified";
}

/// Condition reasons (CamelCase, as Kubernetes expects).
pub mod reasons {
    /// The object was accepted and is being worked on.
    pub const RECONCILING: &str = "Reconciling";
    /// Waiting for the customer to approve the relationship.
    pub const APPROVAL_PENDING: &str = "ApprovalPending";
    /// The relationship is active.
    pub const ACTIVE: &str = "Active";
    /// The customer approved the relationship.
    pub const APPROVED: &str = "Approved";
    /// The relationship exists but is not locked for approval yet.
    pub const NOT_LOCKED: &str = "NotLocked";
    /// No relationship exists yet.
    pub const NOT_CREATED: &str = "NotCreated";
    /// The relationship is not active, so groups cannot be assigned.
    pub const RELATIONSHIP_NOT_ACTIVE: &str = "RelationshipNotActive";
    /// The spec lists no access assignments.
    pub const NO_ASSIGNMENTS: &str = "NoAssignments";
    /// The spec is applied.
    pub const RECONCILED: &str = "Reconciled";
    /// Microsoft is provisioning the approved relationship.
    pub const ACTIVATING: &str = "Activating";
    /// `spec.relationshipId` names a relationship Microsoft does not know.
    pub const NOT_FOUND: &str = "NotFound";
    /// The display name belongs to a relationship with another customer.
    pub const DISPLAY_NAME_TAKEN: &str = "DisplayNameTaken";
    /// The object is being deleted: termination was requested and Microsoft is working on it,
    /// or — before anything is sent — deletion waits for the AppConsents relying on the
    /// relationship to remove their consents (the message names them).
    pub const TERMINATING: &str = "Terminating";
    /// Termination was requested longer ago than the timeout and is not finished.
    pub const TERMINATION_TIMED_OUT: &str = "TerminationTimedOut";
    /// The spec is invalid; the message names the field and the rule.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Roles or duration changed after the relationship was locked for approval.
    pub const ROLES_IMMUTABLE: &str = "RolesImmutable";
    /// The relationship expired.
    pub const EXPIRED: &str = "Expired";
    /// The relationship was terminated.
    pub const TERMINATED: &str = "Terminated";
    /// Access assignments are still pending.
    pub const ASSIGNMENTS_PENDING: &str = "AssignmentsPending";
    /// Every access assignment is active.
    pub const ASSIGNMENTS_ACTIVE: &str = "AssignmentsActive";
    /// An access assignment failed permanently.
    pub const ASSIGNMENT_FAILED: &str = "AssignmentFailed";
    /// The credentials Secret is missing or incomplete, or Entra refuses what it holds (an
    /// expired, revoked or invalid refresh token, a wrong or expired client secret, a
    /// certificate or client assertion it does not accept, an app it does not know): the same
    /// on every kind (`controllers::microsoft_failure`); the message names the cause.
    pub const CREDENTIALS_INVALID: &str = "CredentialsInvalid";
    /// Microsoft refused the request permanently; the message says what to do.
    pub const MICROSOFT_ERROR: &str = "MicrosoftError";
    /// A transient failure; the operator retries.
    pub const TRANSIENT_ERROR: &str = "TransientError";
    /// The relationship ends within 30 days.
    pub const EXPIRES_SOON: &str = "ExpiresSoon";
    /// More than 30 days remain.
    pub const NOT_EXPIRING: &str = "NotExpiring";
    /// No successor relationship is in progress.
    pub const NOT_RENEWING: &str = "NotRenewing";
    /// A successor relationship is being created and locked for approval.
    pub const SUCCESSOR_REQUESTED: &str = "SuccessorRequested";
    /// The successor waits for the customer's approval.
    pub const SUCCESSOR_APPROVAL_PENDING: &str = "SuccessorApprovalPending";
    /// The customer approved the successor; Microsoft is activating it.
    pub const SUCCESSOR_ACTIVATING: &str = "SuccessorActivating";
    /// The successor is active; its access assignments are being made before the switch.
    pub const HANDING_OVER: &str = "HandingOver";
    /// The Kubernetes API failed (transient); the operator retries with backoff.
    pub const KUBERNETES_ERROR: &str = "KubernetesError";
    /// The API server refused the operator a permission it needs (RBAC); the message names it.
    pub const KUBERNETES_FORBIDDEN: &str = "KubernetesForbidden";
    /// Deletion needs the credentials Secret, which is missing or unusable.
    pub const CREDENTIALS_NEEDED_FOR_DELETION: &str = "CredentialsNeededForDeletion";
    /// An access assignment's role change was accepted and Microsoft is applying it.
    pub const ASSIGNMENT_UPDATING: &str = "AssignmentUpdating";
    /// No relationship gives the partner user Global, Application or Cloud Application
    /// Administrator in the customer, so Partner Center cannot consent.
    pub const NO_CONSENT_CAPABLE_ROLE: &str = "NoConsentCapableRole";
    /// The relationship's roles are too recent; Microsoft is still propagating them.
    pub const SETTLING: &str = "Settling";
    /// The operator wrote and Microsoft does not show the write yet (its reads lag, or a consent
    /// or GDAP access is still propagating): waiting, not writing again
    /// (`--propagation-timeout` bounds the wait).
    pub const PROPAGATING: &str = "Propagating";
    /// Microsoft did not show one of the operator's writes (or propagate the access it relies on)
    /// within `--propagation-timeout`; the operator does not write again by itself, and the
    /// message says what to check.
    pub const PROPAGATION_TIMED_OUT: &str = "PropagationTimedOut";
    /// A resource's service principal is missing in the customer tenant.
    pub const SERVICE_PRINCIPALS_MISSING: &str = "ServicePrincipalsMissing";
    /// The sign-in behind the stored refresh token used no MFA, which Partner Center (code
    /// 900421) or Entra (AADSTS50076/50079) requires: the refresh token must be replaced.
    pub const MFA_REQUIRED: &str = "MfaRequired";
    /// A verified consent is no longer complete in the customer tenant although the GDAP
    /// relationship behind it still gives the consent-capable role: the customer revoked it
    /// (or part of it). The only reason that raises the revoked-consent alert.
    pub const REVOKED: &str = "Revoked";
    /// `managementPolicy: Observe` and the customer tenant gives the application more than
    /// `spec.grants` (scopes or application permissions); the operator changes nothing.
    pub const EXCESS_ACCESS: &str = "ExcessAccess";
    /// Deleting an AppConsent, the application still holds permissions in the customer tenant
    /// that the partner user can no longer remove (no GDAP access left); a customer
    /// administrator must remove the enterprise application, or `deletionPolicy: Orphan` leaves
    /// them.
    pub const PERMISSIONS_REMAIN: &str = "PermissionsRemain";
    /// Application permissions need a role the partner user does not hold in the customer.
    pub const PRIVILEGED_ROLE_REQUIRED: &str = "PrivilegedRoleRequired";
    /// The application is not (completely) consented yet; the operator is working on it.
    pub const NOT_CONSENTED: &str = "NotConsented";
    /// A TenantSync's first import has not completed yet (scheduled, running, or retrying).
    pub const IMPORT_PENDING: &str = "ImportPending";
    /// The AppConsent a TenantSync names is missing or not Ready; the import waits for it.
    pub const APP_CONSENT_NOT_READY: &str = "AppConsentNotReady";
    /// Microsoft Graph refused a read: for a TenantSync, the app-only read (an application
    /// permission is missing in the customer tenant); for an AppConsent, the partner user's
    /// reads of a verified consent, unexplained by the relationship or a pending write (the
    /// message carries Microsoft's answer).
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// The sink is configured wrongly (e.g. the PostgreSQL connection Secret is missing).
    pub const SINK_MISCONFIGURED: &str = "SinkMisconfigured";
    /// PostgreSQL's TLS was refused: the server's certificate is not signed by the trusted CA,
    /// does not name the host, has expired, or the server does not offer TLS where `sslmode`
    /// demands it (the message says which, and what to change).
    pub const SINK_TLS_REFUSED: &str = "SinkTLSRefused";
    /// The sink failed in a way retrying does not cure (permissions, damaged data, refused SQL).
    pub const SINK_FAILED: &str = "SinkFailed";
    /// No successful import for two scheduled runs.
    pub const STALE: &str = "Stale";
    /// The last successful import is recent (a TenantSync's `Stale=False`).
    pub const FRESH: &str = "Fresh";
    /// `spec.suspend` is true: scheduled imports are paused (a TenantSync's `Stale=False`).
    pub const SUSPENDED: &str = "Suspended";
    /// A GdapRelationship's `AccessVerified=True`: the partner user got a delegated token for
    /// the customer tenant and read its directory.
    pub const ACCESS_WORKS: &str = "AccessWorks";
    /// A GdapRelationship's `AccessVerified=False`: Entra refused the partner user a delegated
    /// token for the customer tenant, or Graph refused the read (the message carries Microsoft's
    /// error: the AADSTS code or the Graph error code).
    pub const ACCESS_REFUSED: &str = "AccessRefused";
    /// A GdapRelationship's `AccessVerified=Unknown`: the relationship's access is not in place
    /// (no access assignments in the spec, or not all of them active yet), or the check has not
    /// run yet.
    pub const NOT_CHECKED: &str = "NotChecked";
    /// A GdapRelationship's `AccessVerified=Unknown`: the partner's application is not consented
    /// in the customer tenant (AADSTS90099/65001), so no delegated token can be had through it
    /// and the access cannot be verified; an AppConsent consents it.
    pub const APP_NOT_CONSENTED: &str = "AppNotConsented";
    /// A fleet: every covered customer's relationship is active.
    pub const ALL_ACTIVE: &str = "AllActive";
    /// A fleet: relationships await their customers' approval, or customers wait for rollout room.
    pub const ROLLING_OUT: &str = "RollingOut";
    /// A fleet is paused (`spec.rollout.paused`): it writes nothing.
    pub const PAUSED: &str = "Paused";
    /// A fleet: some customers' relationships failed, expired or were terminated, or their
    /// overrides are invalid.
    pub const CUSTOMERS_FAILED: &str = "CustomersFailed";
    /// A fleet: Partner Center's customer list could not be read (nothing is pruned or let go
    /// meanwhile).
    pub const CUSTOMER_LIST_UNREADABLE: &str = "CustomerListUnreadable";
}

/// Event reasons (the `reason` of Kubernetes events the operator publishes).
pub mod events {
    /// The relationship was created in Microsoft.
    pub const CREATED: &str = "Created";
    /// The draft relationship was changed to match the spec.
    pub const UPDATED: &str = "Updated";
    /// The relationship was locked; the note carries the approval link.
    pub const APPROVAL_REQUESTED: &str = "ApprovalRequested";
    /// Microsoft reports a new relationship status.
    pub const STATE_CHANGED: &str = "StateChanged";
    /// Auto-extension was turned on or off.
    pub const AUTO_EXTEND_CHANGED: &str = "AutoExtendChanged";
    /// A security group was assigned.
    pub const ASSIGNMENT_CREATED: &str = "AssignmentCreated";
    /// A role change of an assignment was sent (Microsoft applies it asynchronously).
    pub const ASSIGNMENT_UPDATE_REQUESTED: &str = "AssignmentUpdateRequested";
    /// A security group no longer in the spec was removed.
    pub const ASSIGNMENT_DELETED: &str = "AssignmentDeleted";
    /// An unlocked relationship was deleted.
    pub const DELETED: &str = "Deleted";
    /// Termination was requested from Microsoft.
    pub const TERMINATION_REQUESTED: &str = "TerminationRequested";
    /// Deletion of a relationship waits for the AppConsents relying on it to remove their
    /// consents first; the note names them.
    pub const WAITING_FOR_CONSENTS: &str = "WaitingForConsents";
    /// The operator may not read the object's Namespace (RBAC `get` on `namespaces`): while the
    /// namespace is deleted, deletion cannot wait for AppConsents not yet marked for deletion.
    pub const NAMESPACE_UNREADABLE: &str = "NamespaceUnreadable";
    /// A relationship deleted while awaiting approval is remembered, to be terminated if approved.
    pub const WITHDRAWAL_RECORDED: &str = "WithdrawalRecorded";
    /// A remembered relationship was approved after its object was deleted, and is terminated.
    pub const WITHDRAWN: &str = "Withdrawn";
    /// A successor relationship was created and locked; the note carries the approval link.
    pub const SUCCESSOR_REQUESTED: &str = "SuccessorRequested";
    /// The object switched to its successor relationship.
    pub const HANDED_OVER: &str = "HandedOver";
    /// A successor still awaits approval as the current relationship's end nears (30/7/1 days).
    pub const SUCCESSOR_APPROVAL_PENDING: &str = "SuccessorApprovalPending";
    /// The finalizer was removed; the note says why.
    pub const RELEASED: &str = "Released";
    /// A fleet wrote customers' objects (created new ones or brought them up to date).
    pub const CUSTOMERS_APPLIED: &str = "CustomersApplied";
    /// A fleet deleted the objects of customers it no longer covers (`spec.prune`).
    pub const CUSTOMERS_PRUNED: &str = "CustomersPruned";
    /// A fleet let go of customers it no longer covers: their objects keep running.
    pub const CUSTOMERS_LET_GO: &str = "CustomersLetGo";
    /// A 30/7/1-day expiry warning.
    pub const EXPIRES_SOON: &str = "ExpiresSoon";
    /// The application was consented through Partner Center.
    pub const CONSENTED: &str = "Consented";
    /// A resource's service principal was created in the customer tenant.
    pub const SERVICE_PRINCIPAL_CREATED: &str = "ServicePrincipalCreated";
    /// An application permission was granted.
    pub const APP_ROLE_GRANTED: &str = "AppRoleGranted";
    /// An application permission was removed.
    pub const APP_ROLE_REVOKED: &str = "AppRoleRevoked";
    /// The consent was removed through Partner Center.
    pub const CONSENT_REMOVED: &str = "ConsentRemoved";
    /// Delegated permissions no longer in `spec.grants` were removed (the consent replaced
    /// through Partner Center without them); the note names them.
    pub const SCOPES_REVOKED: &str = "ScopesRevoked";
    /// Deleting an AppConsent, the application still holds permissions the operator cannot
    /// remove (Warning); the note names them and what the customer's admin must do.
    pub const PERMISSIONS_REMAIN: &str = "PermissionsRemain";
    /// A tenant import succeeded.
    pub const IMPORTED: &str = "Imported";
    /// A tenant import failed; the note says why and what to do.
    pub const IMPORT_FAILED: &str = "ImportFailed";
    /// A tenant import succeeded after failures.
    pub const IMPORT_RECOVERED: &str = "ImportRecovered";
}
