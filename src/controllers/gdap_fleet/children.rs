//! The objects a fleet keeps for one customer (pure): their stable names, the labels that tie
//! them to the fleet and the customer, and the GdapRelationship, AppConsent and TenantSync made
//! from the fleet's template and the customer's overrides, with a digest of all three that the
//! relationship carries (`gdap.io/fleet-template`) so a pass rewrites only what changed.

use super::members::Customer;
use crate::api::naming::MAX_DISPLAY_NAME;
use crate::api::shared::{CustomerRef, LocalObjectRef};
use crate::api::{
    AppConsent, AppConsentSpec, ConsentTerms, FleetOverrides, FleetTemplate, GdapRelationship,
    GdapRelationshipSpec, RelationshipTerms, SyncTerms, TenantSync, TenantSyncSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// The label naming the fleet an object belongs to.
pub const FLEET_LABEL: &str = "gdap.io/fleet";
/// The label naming the customer (tenant id) an object of a fleet is for.
pub const CUSTOMER_LABEL: &str = "gdap.io/customer";
/// The annotation on a fleet's relationship: the digest of the customer's three objects as the
/// fleet last applied them.
pub const TEMPLATE_ANNOTATION: &str = "gdap.io/fleet-template";
/// Where a template's display name takes the customer's name.
pub const CUSTOMER_NAME: &str = "{customerName}";
/// How many characters of the tenant id end a fleet's display names (they must be unique).
const TENANT_SUFFIX: usize = 8;

/// The fleet, as its objects refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// Its name.
    pub name: String,
    /// Its namespace (its objects live there too).
    pub namespace: String,
    /// Its uid (the owner reference's).
    pub uid: String,
}

/// The name of the fleet's object for a customer: `<fleet>-<tenant id>`, the same on every
/// pass, so a fleet finds its objects again and never makes two for one customer.
pub fn child_name(fleet: &str, tenant_id: &str) -> String {
    format!("{fleet}-{}", tenant_id.to_ascii_lowercase())
}

/// The labels of the fleet's objects for a customer.
pub fn labels(fleet: &str, tenant_id: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (FLEET_LABEL.to_string(), fleet.to_string()),
        (CUSTOMER_LABEL.to_string(), tenant_id.to_ascii_lowercase()),
    ])
}

/// The relationship's display name for `customer`: the template with `{customerName}` replaced
/// (by the tenant id when the name is unknown), shortened so that `-<first 8 of the tenant id>`
/// still fits Microsoft's 50 characters; display names are unique per partner, and customers
/// may share a name. `None` without a template: the relationship then names itself after the
/// object.
pub fn display_name(template: Option<&str>, customer: &Customer) -> Option<String> {
    let template = template.filter(|t| !t.trim().is_empty())?;
    let name = customer.name.as_deref().unwrap_or(&customer.tenant_id);
    let rendered = template.replace(CUSTOMER_NAME, name);
    let suffix: String = customer.tenant_id.chars().take(TENANT_SUFFIX).collect();
    let room = MAX_DISPLAY_NAME - suffix.len() - 1;
    let head: String = rendered.chars().take(room).collect();
    Some(format!(
        "{}-{suffix}",
        head.trim_end_matches([' ', '-', '.'])
    ))
}

/// The objects the fleet keeps for one customer, and their digest.
#[derive(Debug, Clone)]
pub struct Objects {
    /// The customer's GdapRelationship (carrying the digest).
    pub relationship: GdapRelationship,
    /// Its AppConsent, when the fleet templates one.
    pub consent: Option<AppConsent>,
    /// Its TenantSync, when the fleet templates one.
    pub sync: Option<TenantSync>,
    /// The digest of all three, as applied.
    pub digest: String,
}

/// A customer whose overrides do not make a valid template: which part and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOverride {
    /// `relationship`, `appConsent` or `tenantSync`.
    pub part: &'static str,
    /// What is wrong (serde's message names the field).
    pub message: String,
}

/// The objects of `customer`: the template with the customer's overrides merged in (JSON merge
/// patches), named, labelled and owned for the fleet.
pub fn objects(
    fleet: &Fleet,
    template: &FleetTemplate,
    overrides: Option<&FleetOverrides>,
    customer: &Customer,
) -> Result<Objects, BadOverride> {
    let o = overrides.cloned().unwrap_or_default();
    let terms: RelationshipTerms = overridden(
        &template.relationship,
        o.relationship.as_ref(),
        "relationship",
    )?;
    let name = child_name(&fleet.name, &customer.tenant_id);
    let consent = match &template.app_consent {
        Some(t) => {
            let terms: ConsentTerms = overridden(t, o.app_consent.as_ref(), "appConsent")?;
            Some(consent_object(fleet, terms, customer, &name))
        }
        None => None,
    };
    let sync = match &template.tenant_sync {
        Some(t) => {
            let terms: SyncTerms = overridden(t, o.tenant_sync.as_ref(), "tenantSync")?;
            Some(sync_object(fleet, terms, customer, &name))
        }
        None => None,
    };
    let mut relationship = relationship(fleet, &terms, customer);
    let digest = digest(&relationship, consent.as_ref(), sync.as_ref());
    relationship
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(TEMPLATE_ANNOTATION.to_string(), digest.clone());
    Ok(Objects {
        relationship,
        consent,
        sync,
        digest,
    })
}

/// `template` with `patch` merged in (RFC 7386), read back as the template's type.
fn overridden<T: Serialize + DeserializeOwned + Clone>(
    template: &T,
    patch: Option<&serde_json::Value>,
    part: &'static str,
) -> Result<T, BadOverride> {
    let Some(patch) = patch else {
        return Ok(template.clone());
    };
    let mut value = serde_json::to_value(template).expect("templates serialize");
    json_patch::merge(&mut value, patch);
    serde_json::from_value(value).map_err(|e| BadOverride {
        part,
        message: e.to_string(),
    })
}

/// The GdapRelationship the fleet keeps for `customer`: the terms for this customer, named and
/// labelled for the fleet, owned by it.
pub fn relationship(
    fleet: &Fleet,
    terms: &RelationshipTerms,
    customer: &Customer,
) -> GdapRelationship {
    let mut terms = terms.clone();
    terms.display_name = display_name(terms.display_name.as_deref(), customer);
    let spec = GdapRelationshipSpec {
        customer: customer_ref(customer),
        relationship_id: None,
        terms,
    };
    GdapRelationship {
        metadata: meta(fleet, &customer.tenant_id),
        spec,
        status: None,
    }
}

/// The customer's AppConsent, authorized by its relationship of the fleet.
fn consent_object(
    fleet: &Fleet,
    terms: ConsentTerms,
    customer: &Customer,
    relationship: &str,
) -> AppConsent {
    let spec = AppConsentSpec {
        customer: customer_ref(customer),
        relationship_ref: Some(LocalObjectRef {
            name: relationship.to_string(),
        }),
        terms,
    };
    AppConsent {
        metadata: meta(fleet, &customer.tenant_id),
        spec,
        status: None,
    }
}

/// The customer's TenantSync, importing through its AppConsent of the fleet.
fn sync_object(fleet: &Fleet, terms: SyncTerms, customer: &Customer, consent: &str) -> TenantSync {
    let spec = TenantSyncSpec {
        customer: customer_ref(customer),
        app_consent_ref: LocalObjectRef {
            name: consent.to_string(),
        },
        terms,
    };
    TenantSync {
        metadata: meta(fleet, &customer.tenant_id),
        spec,
        status: None,
    }
}

fn customer_ref(customer: &Customer) -> CustomerRef {
    CustomerRef {
        tenant_id: customer.tenant_id.as_str().into(),
    }
}

/// A digest of the three objects' specs, labels and owner (hex SHA-256).
fn digest(
    relationship: &GdapRelationship,
    consent: Option<&AppConsent>,
    sync: Option<&TenantSync>,
) -> String {
    let all = serde_json::json!([relationship, consent, sync]);
    let bytes = serde_json::to_vec(&all).expect("objects serialize");
    let sum = ring::digest::digest(&ring::digest::SHA256, &bytes);
    sum.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The metadata of the fleet's object for a customer.
fn meta(fleet: &Fleet, tenant_id: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(child_name(&fleet.name, tenant_id)),
        namespace: Some(fleet.namespace.clone()),
        labels: Some(labels(&fleet.name, tenant_id)),
        owner_references: Some(vec![OwnerReference {
            api_version: "gdap.io/v1alpha1".into(),
            kind: "GdapFleet".into(),
            name: fleet.name.clone(),
            uid: fleet.uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contoso() -> Customer {
        Customer {
            tenant_id: "5d027261-0000-4000-8000-000000000001".into(),
            name: Some("Contoso Ltd".into()),
            domain: Some("contoso.com".into()),
        }
    }

    #[test]
    fn names_are_stable_and_labels_name_the_fleet_and_customer() {
        let id = "5D027261-0000-4000-8000-000000000001";
        assert_eq!(
            child_name("estate", id),
            "estate-5d027261-0000-4000-8000-000000000001"
        );
        assert_eq!(
            child_name("estate", id),
            child_name("estate", &id.to_lowercase())
        );
        let l = labels("estate", id);
        assert_eq!(l[FLEET_LABEL], "estate");
        assert_eq!(l[CUSTOMER_LABEL], id.to_lowercase());
    }

    #[test]
    fn display_names_take_the_customers_name_and_stay_unique_and_short() {
        let c = contoso();
        let named = display_name(Some("{customerName} managed"), &c);
        assert_eq!(named.as_deref(), Some("Contoso Ltd managed-5d027261"));
        let mut twin = contoso();
        twin.tenant_id = "9e027261-0000-4000-8000-000000000002".into();
        assert_ne!(
            display_name(Some("{customerName}"), &twin),
            display_name(Some("{customerName}"), &c)
        );
        let mut long = contoso();
        long.name = Some("A".repeat(80));
        let cut = display_name(Some("{customerName} GDAP"), &long).unwrap();
        assert_eq!(cut.chars().count(), MAX_DISPLAY_NAME);
        assert!(cut.ends_with("-5d027261"), "{cut}");
        let unnamed = Customer::by_id(&c.tenant_id);
        assert_eq!(
            display_name(Some("{customerName}"), &unnamed).as_deref(),
            Some("5d027261-0000-4000-8000-000000000001-5d027261")
        );
        assert_eq!(display_name(None, &c), None);
        assert_eq!(display_name(Some("  "), &c), None);
    }

    #[test]
    fn the_relationship_is_the_templates_for_this_customer_owned_by_the_fleet() {
        let fleet = Fleet {
            name: "estate".into(),
            namespace: "msp".into(),
            uid: "uid-1".into(),
        };
        let template: RelationshipTerms = serde_json::from_value(serde_json::json!({
            "displayName": "{customerName}",
            "roles": ["Directory Readers"],
            "duration": "P730D",
            "accessAssignments": [],
        }))
        .unwrap();
        let r = relationship(&fleet, &template, &contoso());
        assert_eq!(r.spec.customer.tenant_id.0, contoso().tenant_id);
        assert_eq!(r.spec.display_name.as_deref(), Some("Contoso Ltd-5d027261"));
        assert_eq!(r.spec.roles, template.roles);
        let meta = &r.metadata;
        assert_eq!(meta.namespace.as_deref(), Some("msp"));
        assert_eq!(
            meta.name.as_deref(),
            Some("estate-5d027261-0000-4000-8000-000000000001")
        );
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("GdapFleet", "uid-1")
        );
        assert_eq!(owner.controller, Some(true));
    }
}
