//! The observe step: the AppConsent the object names (from the operator's watch cache of
//! AppConsents, so an idle object costs no API call) and this object's import in the operator
//! process (running, or ended and not yet recorded). Reads only; nothing here can fail.
//!
//! The Secrets an import needs — the partner credentials and, for the `postgres` sink, the
//! connection Secret — are read when an import starts (`act`), not at every reconcile.

use super::desired::Intent;
use super::plan::{Consent, Observed};
use super::runner::Runner;
use crate::api::AppConsent;
use crate::api::conditions::types;
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
        consent: consent_state(consent.as_deref(), &intent.customer),
        running_since,
        finished,
    }
}

/// The plan's view of the AppConsent (`None`: not found).
pub fn consent_state(consent: Option<&AppConsent>, customer: &str) -> Consent {
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
    match ready {
        Some(c) if c.status == "True" => Consent::Ready,
        Some(c) => Consent::NotReady {
            reason: c.reason.clone(),
            message: c.message.clone(),
        },
        None => Consent::NotReady {
            reason: String::new(),
            message: String::new(),
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
                },
            ),
            (
                Some(consent(T, None)),
                Consent::NotReady {
                    reason: String::new(),
                    message: String::new(),
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
            assert_eq!(consent_state(object.as_ref(), T), want, "{object:?}");
        }
    }
}
