//! The observe step: what the object records (Kubernetes side) and what Microsoft reports — the
//! relationship (by the recorded id, the adopted id, or the display name; always looked up before
//! any create), its access assignments, the role changes Microsoft is applying, and while
//! deleting its `terminate` requests. Reads only. (While deleting, the AppConsents that rely on
//! the relationship are read too, by `consents`, the observe step's Kubernetes half.)
//!
//! It also hands the plan what decides whose a relationship is — how it was found
//! ([`FoundBy`]), its `createdDateTime`, and the create intent's display name and time — and the
//! operator's writes Microsoft does not show yet (the annotation `gdap.io/pending-writes`, see
//! `pending`; an unreadable value counts as none, logged: at worst a write is sent again and
//! Microsoft refuses the duplicate).

use super::desired::Intent;
use super::observed::{
    CreateIntent, FailedAssignment, FoundBy, Linked, Observed, Remote, RemoteAssignment,
    RemoteRelationship, RemoteRequest, RemoteUpdate, Unreadable,
};
use super::writes::Pending;
use crate::api::conditions::types;
use crate::api::{GdapRelationship, IsoDays, naming};
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::failure::Failure;
use crate::controllers::microsoft_failure::{self, Caller};
use crate::controllers::withdrawals;
use crate::microsoft::models::gdap::{
    AccessAssignment, AccessDetails, Operation, OperationType, Relationship, RelationshipRequest,
    RelationshipStatus as State, RequestAction,
};
use crate::microsoft::{self, DelegatedToken, GdapApi, Reason, RelationshipFilter};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Annotation recording that a create may have been sent, with the display name and time.
pub const CREATE_INTENT_ANNOTATION: &str = "gdap.io/create-intent";
/// The id Microsoft answered the object's own create with, recorded with the pending write (so
/// a lost status cannot make the object's own relationship look like somebody else's).
pub const CREATED_ID_ANNOTATION: &str = "gdap.io/created-relationship-id";
/// Annotation with the generation of the current relationship (absent: 0, the first one).
pub const GENERATION_ANNOTATION: &str = "gdap.io/generation";
/// Annotation with the current relationship's id after a hand-over (authoritative, like an
/// external name: it survives a lost status).
pub const RELATIONSHIP_ID_ANNOTATION: &str = "gdap.io/relationship-id";
/// How many generations past the current one are searched for a successor.
const MAX_SUCCESSOR_SEARCH: u32 = 20;

/// Why Microsoft's side could not be observed: the observe stage's errors.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The credentials Secret is missing, incomplete, or could not be read.
    #[error("{}", .0.message)]
    Credentials(Failure),
    /// Microsoft could not be read.
    #[error("reading Microsoft Graph failed: {0}")]
    Microsoft(#[from] microsoft::Error),
}

impl ObserveError {
    /// Retrying later can help without anybody acting.
    pub fn is_transient(&self) -> bool {
        match self {
            ObserveError::Credentials(f) => f.transient,
            ObserveError::Microsoft(e) => microsoft_is_transient(e),
        }
    }

    /// As a failure for the report.
    pub fn failure(&self) -> Failure {
        let reason = match self {
            ObserveError::Credentials(f) => return f.clone(),
            ObserveError::Microsoft(e) => microsoft_reason(e),
        };
        Failure::new(reason, self.to_string(), self.is_transient())
    }
}

/// The condition reason of a Microsoft error: the shared mapping of every controller
/// (`controllers::microsoft_failure`) for a call as the partner's GDAP user.
pub fn microsoft_reason(error: &microsoft::Error) -> &'static str {
    microsoft_failure::reason(error, Caller::PartnerUser)
}

/// Whether retrying a failed Microsoft call later can help (a write whose outcome is unknown is
/// looked up again, which is safe to retry): `controllers::microsoft_failure`'s rule.
pub fn microsoft_is_transient(error: &microsoft::Error) -> bool {
    microsoft_failure::is_transient(error)
}

/// Reads both sides for `object`. Microsoft is read only with usable credentials.
pub async fn observe(
    object: &GdapRelationship,
    intent: &Intent,
    credentials: Result<&Credentials, &CredentialsError>,
) -> (Observed, Option<ObserveError>) {
    let deleting = object.metadata.deletion_timestamp.is_some();
    let recorded_id = object
        .status
        .as_ref()
        .and_then(|s| s.relationship_id.clone());
    let annotations = object.metadata.annotations.clone().unwrap_or_default();
    let generation = annotations
        .get(GENERATION_ANNOTATION)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0);
    let mut observed = Observed {
        deleting,
        create_intent: annotations.contains_key(CREATE_INTENT_ANNOTATION),
        recorded_id: recorded_id.clone(),
        withdrawal_recorded: false,
        generation,
        failed_assignments: failed_assignments(object),
        microsoft: Err(Unreadable { transient: true }),
        // Read by `consents::read` while deleting (it needs the Kubernetes client).
        consents: Ok(Vec::new()),
        access_verified_at: None,
        access_in_place_since: access_in_place_since(object),
    };
    let credentials = match credentials {
        Ok(c) => c,
        Err(e) => {
            observed.microsoft = Err(Unreadable {
                transient: e.is_transient(),
            });
            let error = ObserveError::Credentials(e.failure());
            return (observed, Some(error));
        }
    };
    let token = credentials.clients.tokens.partner_graph();
    let reader = Reader {
        object,
        intent,
        gdap: credentials.clients.gdap.as_ref(),
        token: &token,
        secret: &credentials.secret,
        deleting,
        generation,
    };
    match reader.read(recorded_id.as_deref()).await {
        Ok(remote) => {
            observed.withdrawal_recorded = remote
                .relationship
                .as_ref()
                .is_some_and(|r| withdrawals::recorded(&credentials.secret, &r.id));
            observed.access_verified_at = access_verified_at(object, &remote);
            observed.microsoft = Ok(remote);
            (observed, None)
        }
        Err(e) => {
            observed.microsoft = Err(Unreadable {
                transient: microsoft_is_transient(&e),
            });
            (observed, Some(e.into()))
        }
    }
}

/// Reads Microsoft's side of one object.
struct Reader<'a> {
    object: &'a GdapRelationship,
    intent: &'a Intent,
    gdap: &'a dyn GdapApi,
    token: &'a DelegatedToken,
    secret: &'a k8s_openapi::api::core::v1::Secret,
    deleting: bool,
    generation: u32,
}

impl Reader<'_> {
    async fn read(&self, recorded_id: Option<&str>) -> microsoft::Result<Remote> {
        let mut remote = Remote {
            next_generation: self.generation + 1,
            pending: pending_writes(self.object),
            create_intent: create_intent(self.object),
            ..Default::default()
        };
        if self.tracks_successors() {
            self.read_successor(&mut remote).await?;
        }
        if let Some((found, found_by)) = self.current(recorded_id).await? {
            remote.found_by = found_by;
            remote.relationship_created_at = found.created_date_time;
            let linked = self.linked(&found, self.generation).await?;
            remote.assignments = linked.assignments;
            remote.updates = linked.updates;
            remote.termination = linked.termination;
            remote.relationship = Some(linked.relationship);
        }
        if self.generation > 0 && self.predecessor_may_be_live() {
            remote.predecessor = self.read_predecessor().await?;
        }
        Ok(remote)
    }

    /// The current relationship: the pinned id after a hand-over; before, by the adopted id, the
    /// recorded id, or the display name.
    async fn current(
        &self,
        recorded: Option<&str>,
    ) -> microsoft::Result<Option<(Relationship, FoundBy)>> {
        let annotations = self.object.metadata.annotations.as_ref();
        let pinned = annotations.and_then(|a| a.get(RELATIONSHIP_ID_ANNOTATION));
        if let Some(id) = pinned.filter(|_| self.generation > 0) {
            let found = get_or_none(self.gdap, self.token, id).await?;
            return Ok(found.map(|r| (r, FoundBy::Id)));
        }
        let adopt = self.intent.adopt_id.as_deref();
        find(
            self.gdap,
            self.token,
            adopt,
            recorded,
            &self.intent.display_name,
        )
        .await
    }

    fn tracks_successors(&self) -> bool {
        let renewal = self.intent.spec.as_ref().is_ok_and(|d| d.renewal.is_some());
        let recorded = self
            .object
            .status
            .as_ref()
            .is_some_and(|s| s.successor.is_some());
        renewal || recorded
    }

    /// The first live relationship of a later generation; ended ones (an expired request) and
    /// withdrawn ones are skipped, and the first unused generation is remembered.
    async fn read_successor(&self, remote: &mut Remote) -> microsoft::Result<()> {
        for generation in self.generation + 1..=self.generation + MAX_SUCCESSOR_SEARCH {
            let name = naming::generation_name(&self.intent.display_name, generation);
            let Some((found, _)) = find(self.gdap, self.token, None, None, &name).await? else {
                remote.next_generation = generation;
                return Ok(());
            };
            remote.next_generation = generation + 1;
            let done = is_finished(&found) || withdrawals::recorded(self.secret, &found.id);
            if !done {
                remote.successor = Some(self.linked(&found, generation).await?);
                return Ok(());
            }
        }
        Ok(())
    }

    /// The predecessor may still need ending unless the status saw it terminated or expired.
    fn predecessor_may_be_live(&self) -> bool {
        let Some(status) = self.object.status.as_ref() else {
            return true;
        };
        !status
            .previous_relationships
            .last()
            .is_some_and(|p| matches!(p.state.as_deref(), Some("terminated" | "expired")))
    }

    async fn read_predecessor(&self) -> microsoft::Result<Option<Linked>> {
        let generation = self.generation - 1;
        let known = self
            .object
            .status
            .as_ref()
            .and_then(|s| s.previous_relationships.last())
            .map(|p| p.id.clone());
        let found = match known {
            Some(id) => get_or_none(self.gdap, self.token, &id).await?,
            None => {
                let name = naming::generation_name(&self.intent.display_name, generation);
                let adopt = (generation == 0)
                    .then_some(())
                    .and(self.intent.adopt_id.as_deref());
                find(self.gdap, self.token, adopt, None, &name)
                    .await?
                    .map(|(r, _)| r)
            }
        };
        match found {
            Some(r) => Ok(Some(self.linked(&r, generation).await?)),
            None => Ok(None),
        }
    }

    /// One relationship with its assignments (while active), role changes (when one may be
    /// pending) and terminate requests (when it may need terminating).
    async fn linked(&self, found: &Relationship, generation: u32) -> microsoft::Result<Linked> {
        let relationship = remote_relationship(found);
        let mut linked = Linked {
            generation,
            withdrawal_recorded: withdrawals::recorded(self.secret, &found.id),
            relationship,
            assignments: Vec::new(),
            updates: Vec::new(),
            termination: None,
        };
        if linked.relationship.status == State::Active {
            let assignments = self
                .gdap
                .list_access_assignments(self.token, &found.id)
                .await?;
            linked.assignments = assignments.iter().map(remote_assignment).collect();
            if !self.deleting && role_change_possible(self.object, self.intent, &linked.assignments)
            {
                let operations = self.gdap.list_operations(self.token, &found.id).await?;
                linked.updates = operations.iter().filter_map(remote_update).collect();
            }
        }
        let terminable = matches!(
            linked.relationship.status,
            State::Active | State::TerminationRequested | State::Terminating
        );
        let own_later = generation < self.generation;
        if terminable && (self.deleting || own_later) {
            let requests = self.gdap.list_requests(self.token, &found.id).await?;
            linked.termination = newest_termination(&requests);
        }
        Ok(linked)
    }
}

async fn get_or_none(
    gdap: &dyn GdapApi,
    token: &DelegatedToken,
    id: &str,
) -> microsoft::Result<Option<Relationship>> {
    match gdap.get_relationship(token, id).await {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.reason() == Reason::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Role changes matter when an assignment's roles differ from the spec's or the status shows one
/// pending; otherwise the operations are not read.
fn role_change_possible(
    object: &GdapRelationship,
    intent: &Intent,
    assignments: &[RemoteAssignment],
) -> bool {
    let pending = object.status.as_ref().is_some_and(|s| {
        s.access_assignments
            .iter()
            .any(|a| a.pending_update.is_some())
    });
    let Ok(desired) = &intent.spec else {
        return pending;
    };
    pending
        || assignments.iter().filter(|a| a.is_live()).any(|a| {
            desired
                .assignments
                .get(&a.group_id)
                .is_some_and(|roles| *roles != a.role_ids)
        })
}

/// By id when one is known (the adopted id is authoritative), else by display name.
async fn find(
    gdap: &dyn GdapApi,
    token: &DelegatedToken,
    adopt: Option<&str>,
    recorded: Option<&str>,
    display_name: &str,
) -> microsoft::Result<Option<(Relationship, FoundBy)>> {
    if let Some(id) = adopt.or(recorded) {
        let by = if adopt.is_some() {
            FoundBy::Id
        } else {
            FoundBy::RecordedId
        };
        match gdap.get_relationship(token, id).await {
            Ok(r) => return Ok(Some((r, by))),
            // An id Microsoft calls malformed names no relationship either: reported as
            // `spec.relationshipId` not found, with the id, rather than Graph's bare 400.
            Err(e)
                if adopt.is_some()
                    && matches!(e.reason(), Reason::NotFound | Reason::InvalidRequest) =>
            {
                return Ok(None);
            }
            Err(e) if e.reason() == Reason::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let filter = RelationshipFilter {
        display_name: Some(display_name.to_string()),
        ..Default::default()
    };
    let mut found = gdap.list_relationships(token, &filter).await?;
    found.retain(|r| r.display_name == display_name);
    // Prefer a live one; among equals, the newest.
    found.sort_by_key(|r| (!is_finished(r), r.created_date_time));
    Ok(found.pop().map(|r| (r, FoundBy::DisplayName)))
}

/// When the status says the access through the relationship observed now was last verified
/// (`status.accessVerifiedAt`, for `status.relationshipId`): a check of another relationship (the
/// one before a hand-over) does not count.
pub fn access_verified_at(object: &GdapRelationship, remote: &Remote) -> Option<DateTime<Utc>> {
    let status = object.status.as_ref()?;
    let current = remote.relationship.as_ref()?;
    if status.relationship_id.as_deref() != Some(current.id.as_str()) {
        return None;
    }
    let at = status.access_verified_at.as_ref()?;
    DateTime::<Utc>::from_timestamp(at.0.as_second(), 0)
}

/// Since when the status says every access assignment is active (`AccessAssigned=True`).
pub fn access_in_place_since(object: &GdapRelationship) -> Option<DateTime<Utc>> {
    let status = object.status.as_ref()?;
    let assigned = status
        .conditions
        .iter()
        .find(|c| c.type_ == types::ACCESS_ASSIGNED && c.status == "True")?;
    DateTime::<Utc>::from_timestamp(assigned.last_transition_time.0.as_second(), 0)
}

/// The pending writes the object records: `status.pendingWrites`, or — left by an earlier
/// version of the operator, which kept them there — the annotation `gdap.io/pending-writes`
/// (removed once the status holds them; see `report::forget_annotation_record`).
pub fn pending_writes(object: &GdapRelationship) -> Pending {
    let recorded = object
        .status
        .as_ref()
        .and_then(|s| s.pending_writes.as_deref());
    match recorded {
        Some(value) => crate::controllers::pending_writes::read(Some(value)),
        None => crate::controllers::pending_writes::of(object),
    }
}

/// The create intent the object's annotation records (`<display name> <RFC 3339 time>`).
pub fn create_intent(object: &GdapRelationship) -> Option<CreateIntent> {
    let annotations = object.metadata.annotations.as_ref()?;
    let value = annotations.get(CREATE_INTENT_ANNOTATION)?;
    let (display_name, at) = value.trim().rsplit_once(' ')?;
    let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
    Some(CreateIntent {
        display_name: display_name.to_string(),
        at,
        created_id: annotations.get(CREATED_ID_ANNOTATION).cloned(),
    })
}

fn is_finished(r: &Relationship) -> bool {
    matches!(r.status, Some(State::Terminated | State::Expired))
}

fn role_ids(details: &AccessDetails) -> BTreeSet<String> {
    details
        .role_ids()
        .iter()
        .map(|s| s.to_ascii_lowercase())
        .collect()
}

/// The plan's view of a relationship.
pub fn remote_relationship(r: &Relationship) -> RemoteRelationship {
    RemoteRelationship {
        id: r.id.clone(),
        display_name: r.display_name.clone(),
        customer: r
            .customer
            .as_ref()
            .map(|c| c.tenant_id.to_ascii_lowercase()),
        customer_name: r.customer.as_ref().and_then(|c| c.display_name.clone()),
        status: r.status.clone().unwrap_or(State::Unknown(String::new())),
        role_ids: role_ids(&r.access_details),
        duration_days: r.duration.parse::<IsoDays>().ok().map(|d| d.days()),
        auto_extend: r
            .auto_extend_duration
            .as_deref()
            .is_some_and(|d| d != "PT0S" && d != "P0D"),
        activated_at: r.activated_date_time,
        ends_at: r.end_date_time,
        modified_at: r.last_modified_date_time,
        etag: r.etag.clone(),
    }
}

/// The plan's view of an access assignment.
pub fn remote_assignment(a: &AccessAssignment) -> RemoteAssignment {
    use crate::microsoft::models::gdap::AccessAssignmentStatus as S;
    RemoteAssignment {
        id: a.id.clone(),
        group_id: a.access_container.access_container_id.to_ascii_lowercase(),
        role_ids: role_ids(&a.access_details),
        status: a.status.clone().unwrap_or(S::Unknown(String::new())),
        etag: a.etag.clone(),
    }
}

/// An access-assignment role change, from its operation (whose `data` is the target assignment).
fn remote_update(op: &Operation) -> Option<RemoteUpdate> {
    if op.operation_type != OperationType::AccessAssignmentUpdate {
        return None;
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Target {
        id: String,
        #[serde(default)]
        access_details: AccessDetails,
    }
    let target: Target = serde_json::from_str(&op.data).ok()?;
    Some(RemoteUpdate {
        operation_id: op.id.clone(),
        assignment_id: target.id,
        role_ids: role_ids(&target.access_details),
        status: op.status.clone(),
        modified_at: op.last_modified_date_time,
    })
}

fn failed_assignments(object: &GdapRelationship) -> BTreeMap<String, FailedAssignment> {
    let rows = object
        .status
        .as_ref()
        .map(|s| s.access_assignments.as_slice())
        .unwrap_or_default();
    rows.iter()
        .filter_map(|row| {
            let at = row.failed_at.as_ref()?;
            let at = DateTime::<Utc>::from_timestamp(at.0.as_second(), 0)?;
            Some((
                row.security_group_id.clone(),
                FailedAssignment {
                    role_ids: row.roles.iter().cloned().collect(),
                    at,
                },
            ))
        })
        .collect()
}

/// The newest `terminate` request among a relationship's requests.
pub fn newest_termination(requests: &[RelationshipRequest]) -> Option<RemoteRequest> {
    requests
        .iter()
        .filter(|r| r.action == RequestAction::Terminate)
        .max_by_key(|r| r.created_date_time)
        .map(|r| RemoteRequest {
            status: r.status.clone(),
            created_at: r.created_date_time,
        })
}
