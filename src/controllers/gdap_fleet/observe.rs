//! What a fleet looks at: Partner Center's customer list (read with the partner user's delegated
//! token, at most once per poll interval — a fleet is looked at more often than its customers
//! change) and the GdapRelationships of the fleet's namespace, listed from the API server so a
//! pass always sees what the one before it wrote.

use super::children::{CUSTOMER_LABEL, FLEET_LABEL, TEMPLATE_ANNOTATION};
use super::desired::FleetIntent;
use super::members::Customer;
use super::plan::{Child, Owner, Phase};
use crate::api::GdapRelationship;
use crate::api::conditions::{reasons, types};
use crate::controllers::conditions::{from_time, status_of};
use crate::controllers::credentials::{Credentials, CredentialsError};
use crate::controllers::failure::Failure;
use crate::controllers::microsoft_failure::{self, Caller};
use chrono::{DateTime, Utc};
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// A customer list and when it was read.
type Read = (DateTime<Utc>, Vec<Customer>);

/// Partner Center's customer lists, by fleet uid, with when each was read.
#[derive(Default)]
pub struct CustomerLists(Mutex<HashMap<String, Read>>);

impl CustomerLists {
    /// The list read for `fleet` less than `fresh` ago.
    fn fresh(
        &self,
        fleet: &str,
        fresh: Duration,
        now: DateTime<Utc>,
    ) -> Option<(DateTime<Utc>, Vec<Customer>)> {
        let lists = self.0.lock().expect("customer lists lock");
        let (at, list) = lists.get(fleet)?;
        let age = (now - *at).to_std().unwrap_or_default();
        (age < fresh).then(|| (*at, list.clone()))
    }

    fn keep(&self, fleet: &str, at: DateTime<Utc>, list: Vec<Customer>) {
        let mut lists = self.0.lock().expect("customer lists lock");
        lists.insert(fleet.to_string(), (at, list));
    }

    /// Forgets the list of a fleet that is gone.
    pub fn forget(&self, fleet: &str) {
        self.0.lock().expect("customer lists lock").remove(fleet);
    }
}

/// One of the fleet's GdapRelationships, as the status and the plan need it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The plan's view of it.
    pub child: Child,
    /// The digest of the objects the fleet last applied for the customer.
    pub digest: Option<String>,
    /// When the object was created.
    pub created: Option<DateTime<Utc>>,
    /// Active, and its `AccessVerified` is False.
    pub access_refused: bool,
}

/// What a pass of a fleet found.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Partner Center's customers (when the fleet reads them), or why they could not be read.
    pub partner_center: Result<Vec<Customer>, String>,
    /// When that list was read.
    pub list_read_at: Option<DateTime<Utc>>,
    /// The GdapRelationships of the namespace that concern a customer.
    pub seen: Vec<Seen>,
    /// Listing the namespace's GdapRelationships failed: nothing can be decided.
    pub unlisted: Option<Failure>,
    /// Reading Partner Center failed with the credentials.
    pub credentials_failure: Option<Failure>,
    /// When the fleet pruned customers within the last hour (from its status).
    pub pruned: Vec<DateTime<Utc>>,
}

/// Reads Partner Center's list (when the fleet uses it and the last read is stale) and the
/// namespace's relationships (`None`: there are none to read, as `plan` without a cluster
/// assumes).
pub async fn observe(
    api: Option<&Api<GdapRelationship>>,
    pruned: Vec<DateTime<Utc>>,
    lists: &CustomerLists,
    intent: &FleetIntent,
    credentials: Result<&Credentials, &CredentialsError>,
    poll: Duration,
    now: DateTime<Utc>,
) -> Observed {
    let (partner_center, list_read_at, credentials_failure) =
        customers(lists, intent, credentials, poll, now).await;
    let listed = match api {
        Some(api) => relationships(api, &intent.fleet.name).await,
        None => Ok(Vec::new()),
    };
    let (seen, unlisted) = match listed {
        Ok(seen) => (seen, None),
        Err(e) => (
            Vec::new(),
            Some(Failure::new(
                reasons::KUBERNETES_ERROR,
                format!("listing the GdapRelationships of the namespace failed: {e}"),
                true,
            )),
        ),
    };
    Observed {
        partner_center,
        list_read_at,
        seen,
        unlisted,
        credentials_failure,
        pruned,
    }
}

type CustomersRead = (
    Result<Vec<Customer>, String>,
    Option<DateTime<Utc>>,
    Option<Failure>,
);

/// Partner Center's customers: from the last read when it is fresh, else read now.
async fn customers(
    lists: &CustomerLists,
    intent: &FleetIntent,
    credentials: Result<&Credentials, &CredentialsError>,
    poll: Duration,
    now: DateTime<Utc>,
) -> CustomersRead {
    // A fleet being deleted covers nobody: its list is not needed (nor its credentials).
    if !intent.plan.selection.partner_center || intent.plan.deleting {
        return (Ok(Vec::new()), None, None);
    }
    let uid = &intent.fleet.uid;
    if let Some((at, list)) = lists.fresh(uid, poll, now) {
        return (Ok(list), Some(at), None);
    }
    let credentials = match credentials {
        Ok(c) => c,
        Err(e) => {
            let failure = e.failure();
            return (Err(failure.message.clone()), None, Some(failure));
        }
    };
    let clients = &credentials.clients;
    let token = clients.tokens.partner_center();
    match clients.partner_center.list_customers(&token).await {
        Ok(listed) => {
            let list: Vec<Customer> = listed
                .into_iter()
                .map(|c| Customer {
                    tenant_id: c.tenant_id().to_ascii_lowercase(),
                    name: Some(c.company_profile.company_name.clone()).filter(|n| !n.is_empty()),
                    domain: Some(c.company_profile.domain.clone()).filter(|d| !d.is_empty()),
                })
                .collect();
            lists.keep(uid, now, list.clone());
            (Ok(list), Some(now), None)
        }
        Err(e) => {
            let failure = microsoft_failure::failure(
                &e,
                Caller::PartnerUser,
                format!("reading the partner's customer list from Partner Center failed: {e}"),
            );
            (Err(failure.message.clone()), None, Some(failure))
        }
    }
}

/// Every GdapRelationship of the namespace, paged.
async fn relationships(api: &Api<GdapRelationship>, fleet: &str) -> Result<Vec<Seen>, kube::Error> {
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await?;
        // A relationship being deleted is on its way out (pruned, or deleted by someone): it is
        // neither pruned again nor counted.
        let live = page
            .items
            .iter()
            .filter(|r| r.metadata.deletion_timestamp.is_none());
        seen.extend(live.map(|r| see(r, fleet)));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(seen),
        }
    }
}

/// How the fleet sees one relationship.
fn see(r: &GdapRelationship, fleet: &str) -> Seen {
    let labels = r.labels();
    let ours =
        labels.get(FLEET_LABEL).is_some_and(|f| f == fleet) && labels.contains_key(CUSTOMER_LABEL);
    let status = r.status.clone().unwrap_or_default();
    let phase = phase(status.state.as_deref(), &status.conditions);
    Seen {
        child: Child {
            name: r.name_any(),
            tenant_id: r.spec.customer.tenant_id.0.to_ascii_lowercase(),
            owner: if ours {
                Owner::ThisFleet
            } else {
                Owner::Elsewhere
            },
            phase,
        },
        digest: r.annotations().get(TEMPLATE_ANNOTATION).cloned(),
        created: r.metadata.creation_timestamp.as_ref().map(from_time),
        access_refused: phase == Phase::Active
            && status_of(&status.conditions, types::ACCESS_VERIFIED) == Some("False"),
    }
}

/// The Ready reasons of a relationship that will not get further without someone acting.
const FAILED_REASONS: &[&str] = &[
    reasons::INVALID_SPEC,
    reasons::DISPLAY_NAME_TAKEN,
    reasons::NOT_FOUND,
    reasons::ROLES_IMMUTABLE,
    reasons::CREDENTIALS_INVALID,
    reasons::MFA_REQUIRED,
    reasons::MICROSOFT_ERROR,
    reasons::KUBERNETES_FORBIDDEN,
];

/// How a relationship stands: Microsoft's state, else its Ready condition.
pub fn phase(
    state: Option<&str>,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> Phase {
    match state {
        Some("active") => Phase::Active,
        Some("expired" | "terminated" | "terminating" | "terminationRequested") => Phase::Ended,
        _ => {
            let ready = conditions.iter().find(|c| c.type_ == types::READY);
            match ready {
                Some(c) if c.status == "False" && FAILED_REASONS.contains(&c.reason.as_str()) => {
                    Phase::Failed
                }
                _ => Phase::AwaitingApproval,
            }
        }
    }
}
