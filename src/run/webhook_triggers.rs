//! Where verified Partner Center events go: from a relationship id to the objects it concerns,
//! in every watched scope, each asked to reconcile at once through its controller's
//! `reconcile_on` stream.
//!
//! Contract: a relationship id concerns the GdapRelationships whose `status.relationshipId`,
//! `spec.relationshipId` or `status.successor.id` is that id (read from the controller's
//! cache); the AppConsents of their namespace that name one of them (`spec.relationshipRef`) or
//! their customer tenant; and the GdapFleets that own one of them. An id the caches do not know
//! concerns nothing (another tool's relationship, or one created a moment ago: polling finds
//! it). Before this replica runs the controllers with their caches listed (with leader
//! election: while it does not lead) nothing is triggered and the receiver answers 503.

use crate::api::{AppConsent, GdapFleet, GdapRelationship};
use crate::readiness::Readiness;
use crate::webhook::receiver::{Dispatch, NotActing, Triggered};
use futures::Stream;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// The reconcile requests of one kind in one scope: the sending end and the stream the
/// controller reads.
pub(super) struct Requests<K: kube::Resource> {
    sender: UnboundedSender<ObjectRef<K>>,
    receiver: UnboundedReceiver<ObjectRef<K>>,
}

impl<K: kube::Resource> Requests<K> {
    /// A new channel of requests.
    pub(super) fn new() -> Self {
        let (sender, receiver) = unbounded_channel();
        Requests { sender, receiver }
    }

    /// Splits into the sending end and the controller's stream.
    pub(super) fn split(
        self,
    ) -> (
        UnboundedSender<ObjectRef<K>>,
        impl Stream<Item = ObjectRef<K>> + Send + 'static,
    )
    where
        K: 'static,
        K::DynamicType: Send,
    {
        let stream = futures::stream::unfold(self.receiver, |mut rx| async move {
            rx.recv().await.map(|r| (r, rx))
        });
        (self.sender, stream)
    }
}

/// One scope's caches and request channels.
pub(super) struct ScopeTriggers {
    /// The GdapRelationship controller's cache.
    pub relationships: Store<GdapRelationship>,
    /// The AppConsent controller's cache.
    pub consents: Store<AppConsent>,
    /// Reconcile requests to the GdapRelationship controller.
    pub to_relationships: UnboundedSender<ObjectRef<GdapRelationship>>,
    /// Reconcile requests to the AppConsent controller.
    pub to_consents: UnboundedSender<ObjectRef<AppConsent>>,
    /// Reconcile requests to the GdapFleet controller.
    pub to_fleets: UnboundedSender<ObjectRef<GdapFleet>>,
}

/// Every scope's triggers, and whether the controllers run.
pub struct Triggers {
    scopes: Mutex<Vec<ScopeTriggers>>,
    readiness: OnceLock<Readiness>,
}

impl Triggers {
    /// No scope yet.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Triggers {
            scopes: Mutex::new(Vec::new()),
            readiness: OnceLock::new(),
        })
    }

    /// Adds a scope.
    pub(super) fn add(&self, scope: ScopeTriggers) {
        self.scopes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(scope);
    }

    /// Sets what tells whether the controllers run (once).
    pub(super) fn act_when(&self, readiness: Readiness) {
        let _ = self.readiness.set(readiness);
    }
}

impl Dispatch for Triggers {
    fn acting(&self) -> bool {
        self.readiness.get().is_some_and(Readiness::acting)
    }

    fn relationship_changed(&self, id: &str) -> Result<Triggered, NotActing> {
        if !self.acting() {
            return Err(NotActing);
        }
        let scopes = self.scopes.lock().unwrap_or_else(|p| p.into_inner());
        let mut counts = [0usize; 3];
        for scope in scopes.iter() {
            let found = concerned(scope, id);
            counts[0] += send_all(&scope.to_relationships, found.relationships)?;
            counts[1] += send_all(&scope.to_consents, found.consents)?;
            counts[2] += send_all(&scope.to_fleets, found.fleets)?;
        }
        Ok(["GdapRelationship", "AppConsent", "GdapFleet"]
            .into_iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .collect())
    }
}

fn send_all<K: kube::Resource>(
    to: &UnboundedSender<ObjectRef<K>>,
    refs: Vec<ObjectRef<K>>,
) -> Result<usize, NotActing> {
    let n = refs.len();
    for r in refs {
        to.send(r).map_err(|_| NotActing)?;
    }
    Ok(n)
}

/// The objects of one scope that concern relationship `id`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Concerned {
    pub relationships: Vec<ObjectRef<GdapRelationship>>,
    pub consents: Vec<ObjectRef<AppConsent>>,
    pub fleets: Vec<ObjectRef<GdapFleet>>,
}

fn concerned(scope: &ScopeTriggers, id: &str) -> Concerned {
    let relationships: Vec<Arc<GdapRelationship>> = scope
        .relationships
        .state()
        .into_iter()
        .filter(|r| names_relationship(r, id))
        .collect();
    concerned_by(&relationships, &scope.consents.state())
}

/// What the relationships `matched` concern among `consents` (pure, for tests).
pub(super) fn concerned_by(
    matched: &[Arc<GdapRelationship>],
    consents: &[Arc<AppConsent>],
) -> Concerned {
    let mut found = Concerned::default();
    for rel in matched {
        found.relationships.push(ObjectRef::from_obj(rel.as_ref()));
        let namespace = rel.namespace();
        let fleets = rel
            .owner_references()
            .iter()
            .filter(|o| o.kind == "GdapFleet");
        found.fleets.extend(fleets.map(|o| {
            ObjectRef::<GdapFleet>::new(&o.name).within(namespace.as_deref().unwrap_or_default())
        }));
        let consents_of = consents.iter().filter(|c| {
            c.namespace() == namespace
                && (c
                    .spec
                    .relationship_ref
                    .as_ref()
                    .is_some_and(|r| r.name == rel.name_any())
                    || c.spec.customer.tenant_id == rel.spec.customer.tenant_id)
        });
        found
            .consents
            .extend(consents_of.map(|c| ObjectRef::from_obj(c.as_ref())));
    }
    found.consents.sort_by_key(|r| r.to_string());
    found.consents.dedup();
    found.fleets.sort_by_key(|r| r.to_string());
    found.fleets.dedup();
    found
}

/// Whether `rel` holds Microsoft's relationship `id` (its own, the one it adopts, or its
/// successor).
fn names_relationship(rel: &GdapRelationship, id: &str) -> bool {
    let status = rel.status.as_ref();
    status.and_then(|s| s.relationship_id.as_deref()) == Some(id)
        || rel.spec.relationship_id.as_deref() == Some(id)
        || status
            .and_then(|s| s.successor.as_ref())
            .and_then(|s| s.id.as_deref())
            == Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relationship(name: &str, tenant: &str, owner: Option<&str>) -> Arc<GdapRelationship> {
        let mut value = serde_json::json!({
            "apiVersion": "gdap.io/v1alpha1", "kind": "GdapRelationship",
            "metadata": {"name": name, "namespace": "ns"},
            "spec": {"customer": {"tenantId": tenant}, "roles": ["Global Reader"], "duration": "P730D",
                     "accessAssignments": []},
            "status": {"relationshipId": format!("id-{name}")}
        });
        if let Some(fleet) = owner {
            value["metadata"]["ownerReferences"] = serde_json::json!([{
                "apiVersion": "gdap.io/v1alpha1", "kind": "GdapFleet", "name": fleet, "uid": "u"
            }]);
        }
        Arc::new(serde_json::from_value(value).unwrap())
    }

    fn consent(name: &str, namespace: &str, tenant: &str, rel: Option<&str>) -> Arc<AppConsent> {
        let mut value = serde_json::json!({
            "apiVersion": "gdap.io/v1alpha1", "kind": "AppConsent",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"customer": {"tenantId": tenant}, "applicationId": "00000000-0000-0000-0000-000000000001",
                     "grants": [{"resource": "Microsoft Graph", "scopes": ["User.Read.All"]}]}
        });
        if let Some(r) = rel {
            value["spec"]["relationshipRef"] = serde_json::json!({"name": r});
        }
        Arc::new(serde_json::from_value(value).unwrap())
    }

    const T1: &str = "11111111-1111-1111-1111-111111111111";
    const T2: &str = "22222222-2222-2222-2222-222222222222";

    #[test]
    fn a_relationship_concerns_its_fleet_and_the_consents_naming_it_or_its_customer() {
        let rel = relationship("contoso", T1, Some("customers"));
        assert!(names_relationship(&rel, "id-contoso"));
        assert!(!names_relationship(&rel, "id-other"));
        let consents = [
            consent("by-ref", "ns", T2, Some("contoso")),
            consent("by-tenant", "ns", T1, None),
            consent("other-customer", "ns", T2, None),
            consent("other-namespace", "elsewhere", T1, Some("contoso")),
        ];
        let found = concerned_by(&[rel], &consents);
        assert_eq!(
            found.relationships,
            vec![ObjectRef::new("contoso").within("ns")]
        );
        let names: Vec<String> = found.consents.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names, ["by-ref", "by-tenant"]);
        assert_eq!(found.fleets, vec![ObjectRef::new("customers").within("ns")]);
    }
}
