//! The objects a fleet keeps for one customer (pure): their stable names, the labels that tie
//! them to the fleet and the customer, and the GdapRelationship made from the fleet's template.

use super::members::Customer;
use crate::api::naming::MAX_DISPLAY_NAME;
use crate::api::shared::CustomerRef;
use crate::api::{GdapRelationship, GdapRelationshipSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use std::collections::BTreeMap;

/// The label naming the fleet an object belongs to.
pub const FLEET_LABEL: &str = "gdap.io/fleet";
/// The label naming the customer (tenant id) an object of a fleet is for.
pub const CUSTOMER_LABEL: &str = "gdap.io/customer";
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

/// The GdapRelationship the fleet keeps for `customer`: the template's spec for this customer,
/// named and labelled for the fleet, owned by it.
pub fn relationship(
    fleet: &Fleet,
    template: &GdapRelationshipSpec,
    customer: &Customer,
) -> GdapRelationship {
    let mut spec = template.clone();
    spec.customer = CustomerRef {
        tenant_id: customer.tenant_id.as_str().into(),
    };
    spec.display_name = display_name(template.display_name.as_deref(), customer);
    GdapRelationship {
        metadata: meta(fleet, &customer.tenant_id),
        spec,
        status: None,
    }
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
        let template: GdapRelationshipSpec = serde_json::from_value(serde_json::json!({
            "customer": {"tenantId": "00000000-0000-0000-0000-000000000000"},
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
