//! An in-memory [`GdapApi`] for controller plan/act tests.
//!
//! Contract: [`FakeGdap`] keeps relationships, requests and access assignments in memory and
//! enforces the rules the real API enforces that controllers depend on: unique display names
//! (≤ 50 chars), `If-Match` ETags (new ETag on every write), updates and deletes only while
//! `created` (except `autoExtendDuration` while `active`), lock only from `created`, terminate only
//! from `active`, access assignments only on `active` relationships with roles ⊆ the
//! relationship's. Test hooks move relationships along ([`FakeGdap::approve`],
//! [`FakeGdap::set_status`]), inject failures ([`FakeGdap::fail_next`]) and record calls
//! ([`FakeGdap::calls`]). Tokens are not checked beyond their types; use [`delegated_token`].

use crate::microsoft::GdapApi;
use crate::microsoft::endpoints::Audience;
use crate::microsoft::error::{Error, Reason, Result};
use crate::microsoft::graph_gdap::RelationshipFilter;
use crate::microsoft::models::gdap::*;
use crate::microsoft::secret::Secret;
use crate::microsoft::token::{DelegatedToken, TokenSource};
use async_trait::async_trait;
use chrono::{Duration, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// A delegated Graph token for the fake (no network behind it).
pub fn delegated_token(partner_tenant_id: &str) -> DelegatedToken {
    DelegatedToken::from_access_token(
        partner_tenant_id,
        Audience::Graph,
        Secret::new("fake-access-token"),
    )
}

#[derive(Default)]
struct State {
    relationships: BTreeMap<String, Relationship>,
    requests: BTreeMap<String, Vec<RelationshipRequest>>,
    assignments: BTreeMap<String, Vec<AccessAssignment>>,
    failures: VecDeque<Error>,
    calls: Vec<String>,
    version: u64,
}

impl State {
    fn etag(&mut self) -> String {
        self.version += 1;
        format!("W/\"fake-{}\"", self.version)
    }

    fn relationship(&mut self, id: &str) -> Result<&mut Relationship> {
        self.relationships.get_mut(id).ok_or_else(|| not_found(id))
    }
}

/// The in-memory GDAP API. See the module docs.
#[derive(Default)]
pub struct FakeGdap {
    state: Mutex<State>,
    partner_tenant_id: String,
}

impl std::fmt::Debug for FakeGdap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGdap").finish_non_exhaustive()
    }
}

fn not_found(id: &str) -> Error {
    Error::new(
        Reason::NotFound,
        format!("no delegatedAdminRelationship {id}"),
    )
}

fn invalid(text: impl Into<String>) -> Error {
    Error::new(Reason::InvalidRequest, text)
}

fn check_etag(current: &Option<String>, given: &str) -> Result<()> {
    if current.as_deref() == Some(given) {
        Ok(())
    } else {
        Err(Error::new(
            Reason::PreconditionFailed,
            "the ETag does not match",
        ))
    }
}

impl FakeGdap {
    /// An empty fake for a partner tenant.
    pub fn new(partner_tenant_id: &str) -> Self {
        FakeGdap {
            state: Mutex::default(),
            partner_tenant_id: partner_tenant_id.to_string(),
        }
    }

    fn enter(&self, call: String) -> Result<std::sync::MutexGuard<'_, State>> {
        let mut st = self.state.lock().expect("fake lock");
        st.calls.push(call);
        match st.failures.pop_front() {
            Some(e) => Err(e),
            None => Ok(st),
        }
    }

    /// Makes the next call fail with `err` (queued, one per call).
    pub fn fail_next(&self, err: Error) {
        self.state
            .lock()
            .expect("fake lock")
            .failures
            .push_back(err);
    }

    /// The calls made so far, e.g. `create_relationship ACME`.
    pub fn calls(&self) -> Vec<String> {
        self.state.lock().expect("fake lock").calls.clone()
    }

    /// A snapshot of all relationships.
    pub fn relationships(&self) -> Vec<Relationship> {
        self.state
            .lock()
            .expect("fake lock")
            .relationships
            .values()
            .cloned()
            .collect()
    }

    /// Inserts a relationship as-is (e.g. one to adopt); a missing ETag is generated.
    pub fn insert(&self, mut relationship: Relationship) {
        let mut st = self.state.lock().expect("fake lock");
        if relationship.etag.is_none() {
            relationship.etag = Some(st.etag());
        }
        st.relationships
            .insert(relationship.id.clone(), relationship);
    }

    /// The customer approves: `approvalPending` → `active` with activation and end dates.
    pub fn approve(&self, id: &str, customer_tenant_id: &str) -> Result<()> {
        let mut st = self.state.lock().expect("fake lock");
        let etag = st.etag();
        let rel = st.relationship(id)?;
        if rel.status != Some(RelationshipStatus::ApprovalPending) {
            return Err(invalid(
                "only approvalPending relationships can be approved",
            ));
        }
        let now = Utc::now();
        let days = rel
            .duration
            .trim_start_matches('P')
            .trim_end_matches('D')
            .parse()
            .unwrap_or(730);
        rel.status = Some(RelationshipStatus::Active);
        rel.activated_date_time = Some(now);
        rel.end_date_time = Some(now + Duration::days(days));
        rel.customer = Some(CustomerParticipant {
            tenant_id: customer_tenant_id.to_string(),
            display_name: None,
        });
        rel.etag = Some(etag);
        Ok(())
    }

    /// Forces a status (expiry, termination progress…).
    pub fn set_status(&self, id: &str, status: RelationshipStatus) -> Result<()> {
        let mut st = self.state.lock().expect("fake lock");
        let etag = st.etag();
        let rel = st.relationship(id)?;
        rel.status = Some(status);
        rel.etag = Some(etag);
        Ok(())
    }

    fn push_request(st: &mut State, id: &str, action: RequestAction) -> RelationshipRequest {
        let req = RelationshipRequest {
            etag: Some(st.etag()),
            id: uuid::Uuid::new_v4().to_string(),
            action,
            status: Some(RequestStatus::Succeeded),
            created_date_time: Some(Utc::now()),
            last_modified_date_time: Some(Utc::now()),
        };
        st.requests
            .entry(id.to_string())
            .or_default()
            .push(req.clone());
        req
    }
}

#[async_trait]
impl GdapApi for FakeGdap {
    async fn create_relationship(
        &self,
        _token: &DelegatedToken,
        new: &NewRelationship,
    ) -> Result<Relationship> {
        let mut st = self.enter(format!("create_relationship {}", new.display_name))?;
        let name = &new.display_name;
        if name.is_empty() || name.chars().count() > 50 {
            return Err(invalid("displayName must be 1 to 50 characters"));
        }
        if st.relationships.values().any(|r| &r.display_name == name) {
            return Err(Error::new(
                Reason::Conflict,
                format!("displayName {name} is already used"),
            ));
        }
        let rel = Relationship {
            odata_type: Some("#microsoft.graph.delegatedAdminRelationship".into()),
            etag: Some(st.etag()),
            id: format!("{}-{}", uuid::Uuid::new_v4(), self.partner_tenant_id),
            display_name: name.clone(),
            duration: new.duration.clone(),
            auto_extend_duration: Some(
                new.auto_extend_duration
                    .clone()
                    .unwrap_or_else(|| "PT0S".into()),
            ),
            customer: new.customer.clone(),
            access_details: new.access_details.clone(),
            status: Some(RelationshipStatus::Created),
            created_date_time: Some(Utc::now()),
            last_modified_date_time: Some(Utc::now()),
            activated_date_time: None,
            end_date_time: None,
            indirect_provider_tenant_id: None,
            is_partner_consent_pending: None,
        };
        st.relationships.insert(rel.id.clone(), rel.clone());
        Ok(rel)
    }

    async fn get_relationship(&self, _token: &dyn TokenSource, id: &str) -> Result<Relationship> {
        let mut st = self.enter(format!("get_relationship {id}"))?;
        st.relationship(id).cloned()
    }

    async fn list_relationships(
        &self,
        _token: &dyn TokenSource,
        filter: &RelationshipFilter,
    ) -> Result<Vec<Relationship>> {
        let st = self.enter("list_relationships".into())?;
        let matches = |r: &&Relationship| {
            filter
                .display_name
                .as_ref()
                .is_none_or(|n| &r.display_name == n)
                && filter.customer_tenant_id.as_ref().is_none_or(|t| {
                    r.customer
                        .as_ref()
                        .is_some_and(|c| c.tenant_id.eq_ignore_ascii_case(t))
                })
        };
        Ok(st.relationships.values().filter(matches).cloned().collect())
    }

    async fn update_relationship(
        &self,
        _token: &DelegatedToken,
        id: &str,
        etag: &str,
        patch: &RelationshipPatch,
    ) -> Result<Updated<Relationship>> {
        let mut st = self.enter(format!("update_relationship {id}"))?;
        let new_etag = st.etag();
        let rel = st.relationship(id)?;
        check_etag(&rel.etag, etag)?;
        let only_auto_extend = patch.display_name.is_none()
            && patch.duration.is_none()
            && patch.customer.is_none()
            && patch.access_details.is_none();
        match rel.status {
            Some(RelationshipStatus::Created) => {}
            Some(RelationshipStatus::Active) if only_auto_extend => {}
            _ => {
                return Err(invalid(
                    "the relationship cannot be updated in its current status",
                ));
            }
        }
        if let Some(v) = &patch.display_name {
            rel.display_name = v.clone();
        }
        if let Some(v) = &patch.duration {
            rel.duration = v.clone();
        }
        if let Some(v) = &patch.customer {
            rel.customer = Some(v.clone());
        }
        if let Some(v) = &patch.access_details {
            rel.access_details = v.clone();
        }
        if let Some(v) = &patch.auto_extend_duration {
            rel.auto_extend_duration = Some(v.clone());
        }
        rel.etag = Some(new_etag);
        rel.last_modified_date_time = Some(Utc::now());
        Ok(Updated::Done(rel.clone()))
    }

    async fn delete_relationship(
        &self,
        _token: &DelegatedToken,
        id: &str,
        etag: &str,
    ) -> Result<()> {
        let mut st = self.enter(format!("delete_relationship {id}"))?;
        let rel = st.relationship(id)?;
        check_etag(&rel.etag, etag)?;
        if rel.status != Some(RelationshipStatus::Created) {
            return Err(invalid("only created relationships can be deleted"));
        }
        st.relationships.remove(id);
        Ok(())
    }

    async fn lock_for_approval(
        &self,
        _token: &DelegatedToken,
        id: &str,
    ) -> Result<RelationshipRequest> {
        let mut st = self.enter(format!("lock_for_approval {id}"))?;
        let etag = st.etag();
        let rel = st.relationship(id)?;
        if rel.status != Some(RelationshipStatus::Created) {
            return Err(invalid("lockForApproval needs a created relationship"));
        }
        rel.status = Some(RelationshipStatus::ApprovalPending);
        rel.etag = Some(etag);
        Ok(Self::push_request(
            &mut st,
            id,
            RequestAction::LockForApproval,
        ))
    }

    async fn terminate_relationship(
        &self,
        _token: &DelegatedToken,
        id: &str,
    ) -> Result<RelationshipRequest> {
        let mut st = self.enter(format!("terminate_relationship {id}"))?;
        let etag = st.etag();
        let rel = st.relationship(id)?;
        if rel.status != Some(RelationshipStatus::Active) {
            return Err(invalid("terminate needs an active relationship"));
        }
        rel.status = Some(RelationshipStatus::TerminationRequested);
        rel.etag = Some(etag);
        Ok(Self::push_request(&mut st, id, RequestAction::Terminate))
    }

    async fn list_requests(
        &self,
        _token: &dyn TokenSource,
        id: &str,
    ) -> Result<Vec<RelationshipRequest>> {
        let mut st = self.enter(format!("list_requests {id}"))?;
        st.relationship(id)?;
        Ok(st.requests.get(id).cloned().unwrap_or_default())
    }

    async fn create_access_assignment(
        &self,
        _token: &DelegatedToken,
        relationship_id: &str,
        new: &NewAccessAssignment,
    ) -> Result<AccessAssignment> {
        let mut st = self.enter(format!(
            "create_access_assignment {relationship_id} {}",
            new.access_container.access_container_id
        ))?;
        let rel = st.relationship(relationship_id)?;
        if rel.status != Some(RelationshipStatus::Active) {
            return Err(invalid("access assignments need an active relationship"));
        }
        let allowed = rel
            .access_details
            .role_ids()
            .into_iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        if new
            .access_details
            .role_ids()
            .iter()
            .any(|r| !allowed.iter().any(|a| a == r))
        {
            return Err(invalid(
                "access assignment roles must be a subset of the relationship's roles",
            ));
        }
        let assignment = AccessAssignment {
            etag: Some(st.etag()),
            id: uuid::Uuid::new_v4().to_string(),
            access_container: new.access_container.clone(),
            access_details: new.access_details.clone(),
            status: Some(AccessAssignmentStatus::Active),
            created_date_time: Some(Utc::now()),
            last_modified_date_time: Some(Utc::now()),
        };
        st.assignments
            .entry(relationship_id.to_string())
            .or_default()
            .push(assignment.clone());
        Ok(assignment)
    }

    async fn get_access_assignment(
        &self,
        _token: &dyn TokenSource,
        relationship_id: &str,
        id: &str,
    ) -> Result<AccessAssignment> {
        let st = self.enter(format!("get_access_assignment {relationship_id} {id}"))?;
        st.assignments
            .get(relationship_id)
            .and_then(|v| v.iter().find(|a| a.id == id))
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    async fn list_access_assignments(
        &self,
        _token: &dyn TokenSource,
        relationship_id: &str,
    ) -> Result<Vec<AccessAssignment>> {
        let mut st = self.enter(format!("list_access_assignments {relationship_id}"))?;
        st.relationship(relationship_id)?;
        Ok(st
            .assignments
            .get(relationship_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn update_access_assignment(
        &self,
        _token: &DelegatedToken,
        relationship_id: &str,
        id: &str,
        etag: &str,
        access_details: &AccessDetails,
    ) -> Result<Updated<AccessAssignment>> {
        let mut st = self.enter(format!("update_access_assignment {relationship_id} {id}"))?;
        let new_etag = st.etag();
        let list = st
            .assignments
            .get_mut(relationship_id)
            .ok_or_else(|| not_found(id))?;
        let a = list
            .iter_mut()
            .find(|a| a.id == id)
            .ok_or_else(|| not_found(id))?;
        check_etag(&a.etag, etag)?;
        a.access_details = access_details.clone();
        a.etag = Some(new_etag);
        Ok(Updated::Done(a.clone()))
    }

    async fn delete_access_assignment(
        &self,
        _token: &DelegatedToken,
        relationship_id: &str,
        id: &str,
        etag: &str,
    ) -> Result<()> {
        let mut st = self.enter(format!("delete_access_assignment {relationship_id} {id}"))?;
        let list = st
            .assignments
            .get_mut(relationship_id)
            .ok_or_else(|| not_found(id))?;
        let pos = list
            .iter()
            .position(|a| a.id == id)
            .ok_or_else(|| not_found(id))?;
        check_etag(&list[pos].etag, etag)?;
        list.remove(pos);
        Ok(())
    }

    async fn list_operations(
        &self,
        _token: &dyn TokenSource,
        relationship_id: &str,
    ) -> Result<Vec<Operation>> {
        let mut st = self.enter(format!("list_operations {relationship_id}"))?;
        st.relationship(relationship_id)?;
        Ok(Vec::new())
    }

    async fn get_operation(
        &self,
        _token: &dyn TokenSource,
        relationship_id: &str,
        operation_id: &str,
    ) -> Result<Operation> {
        let _st = self.enter(format!("get_operation {relationship_id} {operation_id}"))?;
        Err(not_found(operation_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_rel(name: &str) -> NewRelationship {
        NewRelationship {
            display_name: name.into(),
            duration: "P30D".into(),
            customer: Some(CustomerParticipant {
                tenant_id: "c-1".into(),
                display_name: None,
            }),
            access_details: AccessDetails::from_role_ids(["r1", "r2"]),
            auto_extend_duration: None,
        }
    }

    #[tokio::test]
    async fn lifecycle_and_rules() {
        let fake = FakeGdap::new("p");
        let t = delegated_token("p");
        let rel = fake.create_relationship(&t, &new_rel("A")).await.unwrap();
        assert_eq!(
            fake.create_relationship(&t, &new_rel("A"))
                .await
                .unwrap_err()
                .reason(),
            Reason::Conflict
        );
        let stale = rel.etag.clone().unwrap();
        let patch = RelationshipPatch {
            duration: Some("P60D".into()),
            ..Default::default()
        };
        let Updated::Done(updated) = fake
            .update_relationship(&t, &rel.id, &stale, &patch)
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(updated.duration, "P60D");
        let err = fake
            .update_relationship(&t, &rel.id, &stale, &patch)
            .await
            .unwrap_err();
        assert_eq!(err.reason(), Reason::PreconditionFailed);
        fake.lock_for_approval(&t, &rel.id).await.unwrap();
        let group = AccessContainer::security_group("g");
        let aa = NewAccessAssignment {
            access_container: group.clone(),
            access_details: AccessDetails::from_role_ids(["r1"]),
        };
        assert_eq!(
            fake.create_access_assignment(&t, &rel.id, &aa)
                .await
                .unwrap_err()
                .reason(),
            Reason::InvalidRequest
        );
        fake.approve(&rel.id, "c-1").unwrap();
        fake.create_access_assignment(&t, &rel.id, &aa)
            .await
            .unwrap();
        let bad = NewAccessAssignment {
            access_container: group,
            access_details: AccessDetails::from_role_ids(["r9"]),
        };
        assert!(
            fake.create_access_assignment(&t, &rel.id, &bad)
                .await
                .is_err()
        );
        let listed = fake
            .list_relationships(
                &t,
                &RelationshipFilter {
                    customer_tenant_id: Some("C-1".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        fake.terminate_relationship(&t, &rel.id).await.unwrap();
        assert_eq!(
            fake.get_relationship(&t, &rel.id).await.unwrap().status,
            Some(RelationshipStatus::TerminationRequested)
        );
        fake.fail_next(Error::new(Reason::Throttled, "x"));
        assert!(
            fake.get_relationship(&t, &rel.id)
                .await
                .unwrap_err()
                .is_transient()
        );
        assert!(fake.calls().iter().any(|c| c == "create_relationship A"));
    }
}
