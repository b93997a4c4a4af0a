//! The observe step's Kubernetes half while a relationship is deleted: the AppConsents whose
//! consent removal its deletion waits for (docs/operations.md, "Uninstall"). An AppConsent
//! removes its consent as the partner user, through the GDAP access the relationship gives; a relationship
//! terminated first would leave the application's permissions granted in the customer tenant and
//! the consent's object (and its namespace) stuck in deletion.
//!
//! Contract:
//! - An AppConsent **relies on** a GdapRelationship when, in the same namespace, its
//!   `spec.relationshipRef.name` is the relationship's name; or it has no `relationshipRef` and
//!   names the same customer (`spec.customer.tenantId`, case-insensitive) and the same
//!   credentials Secret (`spec.credentialsRef`, else the operator's default).
//! - It **counts** only while its deletion would remove something: it still carries the
//!   finalizer `gdap.io/app-consent`, and has neither `deletionPolicy: Orphan` nor
//!   `managementPolicy: Observe`.
//! - Deletion **waits for** those being deleted; and while the Namespace itself is being deleted,
//!   also for those not marked for deletion yet (the namespace controller marks its objects in no
//!   particular order, so the relationship may be marked first).
//! - Reading the Namespace needs RBAC `get` on `namespaces` (the chart grants it; in the
//!   namespaced install the Role in a watched namespace covers that namespace's own object).
//!   **A refused Namespace read degrades, it does not block**: deletion waits only for the
//!   AppConsents already being deleted, and the refusal is reported ([`Dependents::namespace_forbidden`]:
//!   a Warning event `NamespaceUnreadable` on the object and a warning in the log), because
//!   the common case — the consents deleted with or before the relationship — is still ordered.
//!   A refused or failed *list* of AppConsents is a failure: deletion waits (`KubernetesForbidden`
//!   or `KubernetesError`) rather than risk terminating under a consent.
//!
//! The decision itself is [`waits_for`] (pure, tested below); [`read`] does the two reads.

use crate::api::conditions::reasons;
use crate::api::{AppConsent, DeletionPolicy, GdapRelationship, ManagementPolicy};
use crate::controllers::LIST_PAGE;
use crate::controllers::app_consent::FINALIZER as CONSENT_FINALIZER;
use crate::controllers::context::Context;
use crate::controllers::failure::Failure;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

/// The relationship being deleted, as the AppConsents name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relied<'a> {
    /// Its object's name (what `spec.relationshipRef.name` names).
    pub name: &'a str,
    /// Its customer tenant id.
    pub customer: &'a str,
    /// Its credentials Secret (its `credentialsRef`, else the operator's default), if any.
    pub secret: Option<&'a str>,
}

/// One AppConsent, with the credentials Secret it uses resolved (`credentialsRef`, else the
/// operator's default).
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The object.
    pub consent: &'a AppConsent,
    /// Its credentials Secret, if any.
    pub secret: Option<&'a str>,
}

/// What [`read`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependents {
    /// The AppConsents deletion waits for, sorted by name.
    pub names: Vec<String>,
    /// The API server refused reading the Namespace (its message, which names the permission):
    /// AppConsents not yet marked for deletion were not waited for.
    pub namespace_forbidden: Option<String>,
}

/// The AppConsents could not be listed (or the Namespace read failed other than by a refusal).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ReadError {
    message: String,
    forbidden: bool,
}

impl ReadError {
    fn new(what: &str, error: kube::Error) -> ReadError {
        let forbidden = is_forbidden(&error);
        let message = if forbidden {
            format!(
                "{what} was refused ({error}); deleting this relationship waits until the operator may see which AppConsents still need it (grant it list on appconsents.gdap.io), or set spec.deletionPolicy: Orphan"
            )
        } else {
            format!(
                "{what} failed ({error}); deleting this relationship waits until it can tell whether AppConsents still need it"
            )
        };
        ReadError { message, forbidden }
    }

    /// Retrying later can help without anybody acting (the API server failed, rather than
    /// refusing the permission).
    pub fn is_transient(&self) -> bool {
        !self.forbidden
    }

    /// As a failure for the report.
    pub fn failure(&self) -> Failure {
        let reason = if self.forbidden {
            reasons::KUBERNETES_FORBIDDEN
        } else {
            reasons::KUBERNETES_ERROR
        };
        Failure::new(reason, self.message.clone(), self.is_transient())
    }
}

fn is_forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(e) if e.code == 401 || e.code == 403)
}

/// The consent relies on the relationship: by `relationshipRef`, or without one by the same
/// customer and credentials Secret.
pub fn relies_on(relationship: &Relied, candidate: Candidate) -> bool {
    let spec = &candidate.consent.spec;
    match &spec.relationship_ref {
        Some(reference) => reference.name == relationship.name,
        None => {
            spec.customer
                .tenant_id
                .0
                .eq_ignore_ascii_case(relationship.customer)
                && candidate.secret.is_some()
                && candidate.secret == relationship.secret
        }
    }
}

/// Deleting the consent removes something in Microsoft, and the operator has not released it
/// yet: it carries the finalizer, and neither orphans nor only observes.
pub fn removes_on_delete(consent: &AppConsent) -> bool {
    consent.finalizers().iter().any(|f| f == CONSENT_FINALIZER)
        && consent.spec.deletion_policy != DeletionPolicy::Orphan
        && consent.spec.management_policy != ManagementPolicy::Observe
}

/// The relationship's deletion waits for this consent: it relies on it, removes something when
/// deleted, and is being deleted — or will be, because its namespace is.
pub fn waits_for(relationship: &Relied, candidate: Candidate, namespace_deleting: bool) -> bool {
    let deleting = candidate.consent.metadata.deletion_timestamp.is_some();
    relies_on(relationship, candidate)
        && removes_on_delete(candidate.consent)
        && (deleting || namespace_deleting)
}

/// The names of the consents among `candidates` that deletion waits for, sorted.
pub fn awaited(
    relationship: &Relied,
    candidates: &[Candidate],
    namespace_deleting: bool,
) -> Vec<String> {
    let mut names: Vec<String> = candidates
        .iter()
        .filter(|c| waits_for(relationship, **c, namespace_deleting))
        .map(|c| c.consent.name_any())
        .collect();
    names.sort();
    names
}

/// Reads the object's Namespace and the AppConsents of the namespace (from the API server, not a
/// cache: one created a moment ago counts) and returns those deletion waits for. `secret` is
/// the relationship's credentials Secret.
pub async fn read(
    ctx: &Context,
    object: &GdapRelationship,
    secret: Option<&str>,
) -> Result<Dependents, ReadError> {
    let namespace = object.namespace().unwrap_or_default();
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let mut dependents = Dependents::default();
    let namespace_deleting = match namespaces.get_opt(&namespace).await {
        Ok(found) => found.is_some_and(|n| n.metadata.deletion_timestamp.is_some()),
        Err(kube::Error::Api(e)) if e.code == 401 || e.code == 403 => {
            dependents.namespace_forbidden = Some(e.message);
            false
        }
        Err(e) => return Err(ReadError::new(&format!("reading Namespace {namespace}"), e)),
    };
    let consents = list_consents(ctx, &namespace)
        .await
        .map_err(|e| ReadError::new(&format!("listing AppConsents in namespace {namespace}"), e))?;
    let secrets: Vec<Option<String>> = consents
        .iter()
        .map(|c| ctx.secret_name(&namespace, c.spec.credentials_ref.as_ref()))
        .collect();
    let candidates: Vec<Candidate> = consents
        .iter()
        .zip(&secrets)
        .map(|(consent, secret)| Candidate {
            consent,
            secret: secret.as_deref(),
        })
        .collect();
    let name = object.name_any();
    let relationship = Relied {
        name: &name,
        customer: &object.spec.customer.tenant_id.0,
        secret,
    };
    dependents.names = awaited(&relationship, &candidates, namespace_deleting);
    Ok(dependents)
}

/// Every AppConsent of `namespace`, in pages of [`LIST_PAGE`].
async fn list_consents(ctx: &Context, namespace: &str) -> kube::Result<Vec<AppConsent>> {
    let api: Api<AppConsent> = Api::namespaced(ctx.client.clone(), namespace);
    let mut params = ListParams::default().limit(LIST_PAGE);
    let mut all = Vec::new();
    loop {
        let page = api.list(&params).await?;
        all.extend(page.items);
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CUSTOMER: &str = "11111111-2222-3333-4444-555555555555";
    const OTHER: &str = "99999999-2222-3333-4444-555555555555";

    fn relationship() -> Relied<'static> {
        Relied {
            name: "contoso",
            customer: CUSTOMER,
            secret: Some("partner-credentials"),
        }
    }

    /// An AppConsent `name` with `spec` merged into a minimal one (customer `CUSTOMER`, no
    /// reference), the operator's finalizer, and `deleting` for a deletion timestamp.
    fn consent(name: &str, spec: serde_json::Value, deleting: bool) -> AppConsent {
        let mut base = json!({
            "customer": {"tenantId": CUSTOMER},
            "applicationId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "grants": [],
        });
        for (k, v) in spec.as_object().unwrap() {
            base[k] = v.clone();
        }
        let mut metadata =
            json!({"name": name, "namespace": "team-a", "finalizers": [CONSENT_FINALIZER]});
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-11-22T12:00:00Z");
        }
        serde_json::from_value(json!({
            "apiVersion": "gdap.io/v1alpha1",
            "kind": "AppConsent",
            "metadata": metadata,
            "spec": base,
        }))
        .unwrap()
    }

    fn without_finalizer(mut c: AppConsent) -> AppConsent {
        c.metadata.finalizers = None;
        c
    }

    #[test]
    fn which_consents_deletion_waits_for() {
        let secret = Some("partner-credentials");
        let by_ref = json!({"relationshipRef": {"name": "contoso"}});
        // (case, consent, its resolved Secret, namespace being deleted, waited for)
        let rows: Vec<(&str, AppConsent, Option<&str>, bool, bool)> = vec![
            (
                "by reference, being deleted",
                consent("a", by_ref.clone(), true),
                secret,
                false,
                true,
            ),
            (
                "by reference, not being deleted",
                consent("a", by_ref.clone(), false),
                secret,
                false,
                false,
            ),
            (
                "by reference, the namespace is being deleted",
                consent("a", by_ref.clone(), false),
                secret,
                true,
                true,
            ),
            (
                "a reference to another relationship",
                consent("a", json!({"relationshipRef": {"name": "fabrikam"}}), true),
                secret,
                true,
                false,
            ),
            (
                "a reference wins over a matching customer and Secret",
                consent("a", json!({"relationshipRef": {"name": "other"}}), true),
                secret,
                false,
                false,
            ),
            (
                "by reference, another Secret still counts",
                consent("a", by_ref.clone(), true),
                Some("other"),
                false,
                true,
            ),
            (
                "same customer and Secret",
                consent("a", json!({}), true),
                secret,
                false,
                true,
            ),
            (
                "same customer, other case",
                consent(
                    "a",
                    json!({"customer": {"tenantId": CUSTOMER.to_uppercase()}}),
                    true,
                ),
                secret,
                false,
                true,
            ),
            (
                "another customer",
                consent("a", json!({"customer": {"tenantId": OTHER}}), true),
                secret,
                true,
                false,
            ),
            (
                "same customer, another Secret",
                consent("a", json!({}), true),
                Some("other"),
                true,
                false,
            ),
            (
                "same customer, no Secret at all",
                consent("a", json!({}), true),
                None,
                true,
                false,
            ),
            (
                "deletionPolicy Orphan removes nothing",
                consent(
                    "a",
                    json!({"deletionPolicy": "Orphan", "relationshipRef": {"name": "contoso"}}),
                    true,
                ),
                secret,
                true,
                false,
            ),
            (
                "managementPolicy Observe removes nothing",
                consent(
                    "a",
                    json!({"managementPolicy": "Observe", "relationshipRef": {"name": "contoso"}}),
                    true,
                ),
                secret,
                true,
                false,
            ),
            (
                "already released (no finalizer)",
                without_finalizer(consent("a", by_ref.clone(), true)),
                secret,
                true,
                false,
            ),
            (
                "never reconciled (no finalizer)",
                without_finalizer(consent("a", by_ref.clone(), false)),
                secret,
                true,
                false,
            ),
        ];
        let mut failures = Vec::new();
        for (case, c, secret, namespace_deleting, expected) in rows {
            let candidate = Candidate {
                consent: &c,
                secret,
            };
            let got = waits_for(&relationship(), candidate, namespace_deleting);
            if got != expected {
                failures.push(format!("{case}: expected {expected}, got {got}"));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    #[test]
    fn the_names_are_sorted_and_only_those_waited_for() {
        let by_ref = json!({"relationshipRef": {"name": "contoso"}});
        let consents = [
            consent("zeta", by_ref.clone(), true),
            consent("alpha", json!({}), false),
            consent("orphaned", json!({"deletionPolicy": "Orphan"}), true),
        ];
        let candidates: Vec<Candidate> = consents
            .iter()
            .map(|consent| Candidate {
                consent,
                secret: Some("partner-credentials"),
            })
            .collect();
        assert_eq!(awaited(&relationship(), &candidates, false), ["zeta"]);
        assert_eq!(
            awaited(&relationship(), &candidates, true),
            ["alpha", "zeta"]
        );
    }
}
