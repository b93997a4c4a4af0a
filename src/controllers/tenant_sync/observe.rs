//! The observe step: the AppConsent the object names (from the operator's watch cache of
//! AppConsents, so an idle object costs no API call) and this object's import in the operator
//! process (running, or ended and not yet recorded). Reads only; nothing here can fail. Of the
//! AppConsent it also takes when it last consented or became Ready ([`consent_since`]): an
//! import refused soon after may only meet permissions Entra still propagates.
//!
//! The Secrets an import needs — the partner credentials and, for the `postgres` sink, the
//! connection Secret — are read when an import starts (`act`), not at every reconcile.

use super::desired::Intent;
use super::plan::{Consent, Observed, from_time};
use super::runner::Runner;
use crate::api::AppConsent;
use crate::api::conditions::types;
use chrono::{DateTime, Utc};
use kube::runtime::reflector::{ObjectRef, Store};

/// Reads both sides for the object in `namespace`.
pub fn observe(
    intent: &Intent,
    namespace: &str,
    consents: &Store<AppConsent>,
    runner: &Runner,
) -> Observed {
    let consent = consents.get(&ObjectRef::new(&intent.consent).within(namespace));
    let (running_since, finished) = runner.observe(&intent.key);
    Observed {
        consent: consent_state(
            consent.as_deref(),
            &intent.customer,
            intent.credentials.as_deref(),
        ),
        running_since,
        finished,
        consent_since: consent.as_deref().and_then(consent_since),
        customer_name: consent
            .as_deref()
            .and_then(|c| c.status.as_ref()?.customer_display_name.clone()),
    }
}

/// When the AppConsent last consented (`status.consentedAt`) or became Ready (its Ready
/// condition's last transition, while True), whichever is later.
pub fn consent_since(consent: &AppConsent) -> Option<DateTime<Utc>> {
    let status = consent.status.as_ref()?;
    let consented = status.consented_at.as_ref().map(from_time);
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == types::READY && c.status == "True")
        .map(|c| from_time(&c.last_transition_time));
    consented.max(ready)
}

/// The plan's view of the AppConsent (`None`: not found), for an object of `customer` whose
/// `spec.credentialsRef` names `credentials`.
pub fn consent_state(
    consent: Option<&AppConsent>,
    customer: &str,
    credentials: Option<&str>,
) -> Consent {
    let Some(consent) = consent else {
        return Consent::Missing;
    };
    let tenant = consent.spec.customer.tenant_id.0.to_ascii_lowercase();
    if tenant != customer {
        return Consent::OtherCustomer { tenant };
    }
    let ready = consent
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == types::READY));
    let same_credentials = consent
        .spec
        .credentials_ref
        .as_ref()
        .map(|r| r.name.as_str())
        == credentials;
    match ready {
        Some(c) if c.status == "True" => Consent::Ready,
        Some(c) => Consent::NotReady {
            reason: c.reason.clone(),
            message: c.message.clone(),
            same_credentials,
        },
        None => Consent::NotReady {
            reason: String::new(),
            message: String::new(),
            same_credentials,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn consent(tenant: &str, ready: Option<(&str, &str)>) -> AppConsent {
        let conditions: Vec<_> = ready
            .into_iter()
            .map(|(status, reason)| {
                json!({"type": "Ready", "status": status, "reason": reason, "message": "m",
                       "lastTransitionTime": "2026-01-01T00:00:00Z"})
            })
            .collect();
        serde_json::from_value(json!({
            "apiVersion": "gdap.io/v1alpha1", "kind": "AppConsent",
            "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"customer": {"tenantId": tenant}, "applicationId": "57667d41-992a-49b0-99d8-ddf68328373f",
                     "relationshipRef": {"name": "r"}, "grants": [{"resource": "Microsoft Graph", "appRoles": ["User.Read.All"]}]},
            "status": {"conditions": conditions}
        }))
        .unwrap()
    }

    #[test]
    fn the_consent_time_is_the_later_of_the_consent_and_the_ready_transition() {
        const T: &str = "11111111-2222-3333-4444-555555555555";
        let mut ready = consent(T, Some(("True", "Reconciled")));
        assert_eq!(
            consent_since(&ready).map(|t| t.to_rfc3339()),
            Some("2026-01-01T00:00:00+00:00".into())
        );
        ready.status.as_mut().unwrap().consented_at =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2026-01-02T00:00:00Z".parse().unwrap(),
            ));
        assert_eq!(
            consent_since(&ready).map(|t| t.to_rfc3339()),
            Some("2026-01-02T00:00:00+00:00".into())
        );
        let not_ready = consent(T, Some(("False", "Propagating")));
        assert_eq!(consent_since(&not_ready), None);
    }

    #[test]
    fn the_consent_must_exist_be_for_the_customer_and_be_ready() {
        const T: &str = "11111111-2222-3333-4444-555555555555";
        let table = [
            (None, Consent::Missing),
            (
                Some(consent(T, Some(("True", "Consented")))),
                Consent::Ready,
            ),
            (
                Some(consent(&T.to_uppercase(), Some(("True", "Consented")))),
                Consent::Ready,
            ),
            (
                Some(consent(T, Some(("False", "Revoked")))),
                Consent::NotReady {
                    reason: "Revoked".into(),
                    message: "m".into(),
                    same_credentials: true,
                },
            ),
            (
                Some(consent(T, None)),
                Consent::NotReady {
                    reason: String::new(),
                    message: String::new(),
                    same_credentials: true,
                },
            ),
            (
                Some(consent(
                    "99999999-2222-3333-4444-555555555555",
                    Some(("True", "Consented")),
                )),
                Consent::OtherCustomer {
                    tenant: "99999999-2222-3333-4444-555555555555".into(),
                },
            ),
        ];
        for (object, want) in table {
            assert_eq!(consent_state(object.as_ref(), T, None), want, "{object:?}");
        }
    }

    #[test]
    fn the_consent_shares_the_credentials_when_both_name_the_same_secret_or_neither_names_one() {
        const T: &str = "11111111-2222-3333-4444-555555555555";
        let mut object = consent(T, Some(("False", "CredentialsInvalid")));
        let shares =
            |object: &AppConsent, credentials| match consent_state(Some(object), T, credentials) {
                Consent::NotReady {
                    same_credentials, ..
                } => same_credentials,
                other => panic!("{other:?}"),
            };
        assert!(shares(&object, None), "both use the default Secret");
        assert!(!shares(&object, Some("other")));
        object.spec.credentials_ref = Some(crate::api::SecretRef {
            name: "other".into(),
        });
        assert!(shares(&object, Some("other")));
        assert!(!shares(&object, None));
    }
}
