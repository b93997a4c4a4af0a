//! The checks of a GdapFleet that its schema cannot make: each customer's objects, as the fleet
//! would write them (the template for any customer, and each listed customer with its
//! overrides), must pass every check of their own kind; and the fleet's name becomes a label
//! value (at most 63 characters).

use crate::api::GdapFleet;
use crate::api::field_problem::FieldProblem;
use crate::controllers::gdap_fleet::children::{Fleet, Objects, objects};
use crate::controllers::gdap_fleet::members::Customer;
use kube::ResourceExt;
use serde_json::Value;

/// The longest fleet name: its objects carry it as the value of the label `gdap.io/fleet`.
pub const MAX_FLEET_NAME: usize = 63;
/// The customer the template is checked for.
const ANY_CUSTOMER: &str = "00000000-0000-4000-8000-000000000000";

/// The problems of `fleet`; `check` runs every check of a kind on one rendered object.
pub fn fleet_problems(
    fleet: &GdapFleet,
    check: &dyn Fn(&Value) -> Vec<FieldProblem>,
) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let name = fleet.name_any();
    if name.chars().count() > MAX_FLEET_NAME {
        problems.push(FieldProblem::new(
            "metadata.name",
            format!("a GdapFleet's name is at most {MAX_FLEET_NAME} characters: its objects carry it in the label gdap.io/fleet"),
        ));
    }
    let owner = Fleet {
        name,
        namespace: fleet.namespace().unwrap_or_default(),
        uid: "00000000-0000-0000-0000-000000000000".into(),
    };
    let template = &fleet.spec.template;
    let any = Customer {
        tenant_id: ANY_CUSTOMER.into(),
        name: Some("Customer".into()),
        domain: None,
    };
    if let Ok(o) = objects(&owner, template, None, &any) {
        for (part, rendered) in rendered(&o) {
            problems.extend(
                check(&rendered)
                    .into_iter()
                    .map(|p| moved(p, &format!("spec.template.{part}"))),
            );
        }
    }
    for (i, listed) in fleet.spec.customers.list.iter().enumerate() {
        let Some(overrides) = &listed.overrides else {
            continue;
        };
        let field = format!("spec.customers.list[{i}].overrides");
        let customer = Customer {
            tenant_id: listed.tenant_id.0.to_ascii_lowercase(),
            name: listed.name.clone(),
            domain: None,
        };
        match objects(&owner, template, Some(overrides), &customer) {
            Err(bad) => problems.push(FieldProblem::new(
                format!("{field}.{}", bad.part),
                format!(
                    "the template with this merge patch is not valid: {}",
                    bad.message
                ),
            )),
            Ok(o) => {
                for (part, rendered) in rendered(&o) {
                    for p in check(&rendered) {
                        problems.push(FieldProblem::new(
                            format!("{field}.{part}"),
                            format!("after the merge, {}: {}", p.field, p.message),
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The customer's objects as JSON documents, by template part.
fn rendered(o: &Objects) -> Vec<(&'static str, Value)> {
    let mut all = vec![(
        "relationship",
        document(&o.relationship, "GdapRelationship"),
    )];
    if let Some(c) = &o.consent {
        all.push(("appConsent", document(c, "AppConsent")));
    }
    if let Some(s) = &o.sync {
        all.push(("tenantSync", document(s, "TenantSync")));
    }
    all
}

fn document<T: serde::Serialize>(object: &T, kind: &str) -> Value {
    let mut value = serde_json::to_value(object).expect("objects serialize");
    value["apiVersion"] = "gdap.io/v1alpha1".into();
    value["kind"] = kind.into();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    value
}

/// A rendered object's problem at `spec.X`, moved to the template's field.
fn moved(p: FieldProblem, template: &str) -> FieldProblem {
    match p.field.strip_prefix("spec.") {
        Some(rest) => FieldProblem::new(format!("{template}.{rest}"), p.message),
        None => FieldProblem::new(template.to_string(), format!("{}: {}", p.field, p.message)),
    }
}
