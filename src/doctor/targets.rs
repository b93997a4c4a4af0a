//! What manifests name that must exist at Microsoft: the partner security groups of
//! GdapRelationship access assignments (`spec.accessAssignments[].securityGroupId`; groups are
//! named by object id only) and the customer tenants of GdapRelationship, AppConsent and
//! TenantSync (`spec.customer.tenantId`). Manifests are first checked by `validate`'s own rules
//! (the same messages), and only valid ones are read for targets.

use crate::validate::{self, ManifestValidator, Problem};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A manifest object that names a target, for messages: `Kind namespace/name (file)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    /// The object's kind.
    pub kind: String,
    /// `Kind namespace/name (file)`.
    pub label: String,
}

/// Everything the manifests name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Security group id (lower case) → the objects that name it.
    pub groups: BTreeMap<String, Vec<Named>>,
    /// Customer tenant id (lower case) → the objects that name it.
    pub customers: BTreeMap<String, Vec<Named>>,
    /// gdap.io objects read.
    pub objects: usize,
}

/// The manifests under `paths`: validate's problems, or the targets of valid ones.
#[derive(Debug)]
pub enum Loaded {
    /// Every object is valid.
    Valid(Targets),
    /// Some are not (each problem as `validate` prints it).
    Invalid(Vec<Problem>),
}

/// Reads and validates the manifests (files, or directories searched recursively).
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Loaded> {
    let validator = ManifestValidator::new();
    let report = validator
        .validate_paths(paths)
        .map_err(|e| anyhow::anyhow!("reading manifests: {e}"))?;
    if !report.problems.is_empty() {
        return Ok(Loaded::Invalid(report.problems));
    }
    let mut targets = Targets::default();
    for file in validate::collect_files(paths)? {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", file.display()))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(document)
                .map_err(|e| anyhow::anyhow!("{}: not valid YAML: {e}", file.display()))?;
            add(&mut targets, &file, &validate::yaml_to_json(value));
        }
    }
    Ok(Loaded::Valid(targets))
}

/// Adds what one (valid) object names (pure).
pub fn add(targets: &mut Targets, file: &Path, object: &Value) {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    if !api_version.starts_with(&format!("{}/", crate::api::GROUP)) {
        return;
    }
    targets.objects += 1;
    let kind = object["kind"].as_str().unwrap_or_default().to_string();
    let name = object["metadata"]["name"].as_str().unwrap_or("(no name)");
    let object_name = match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    };
    let named = Named {
        kind: kind.clone(),
        label: format!("{kind} {object_name} ({})", file.display()),
    };
    if let Some(tenant) = object["spec"]["customer"]["tenantId"].as_str() {
        push(&mut targets.customers, tenant, &named);
    }
    if kind == "GdapRelationship" {
        for assignment in object["spec"]["accessAssignments"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(group) = assignment["securityGroupId"].as_str() {
                push(&mut targets.groups, group, &named);
            }
        }
    }
}

fn push(map: &mut BTreeMap<String, Vec<Named>>, key: &str, named: &Named) {
    let list = map.entry(key.to_ascii_lowercase()).or_default();
    if !list.contains(named) {
        list.push(named.clone());
    }
}

/// The labels of `named`, joined for a message.
pub fn labels(named: &[Named]) -> String {
    named
        .iter()
        .map(|n| n.label.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_and_customers_are_collected_per_object() {
        let mut t = Targets::default();
        let file = Path::new("m.yaml");
        add(
            &mut t,
            file,
            &json!({"apiVersion": "gdap.io/v1alpha1", "kind": "GdapRelationship",
                "metadata": {"name": "r", "namespace": "n"},
                "spec": {"customer": {"tenantId": "AAA"}, "accessAssignments": [
                    {"securityGroupId": "G1", "roles": ["x"]}, {"securityGroupId": "g2", "roles": ["x"]}]}}),
        );
        add(
            &mut t,
            file,
            &json!({"apiVersion": "gdap.io/v1alpha1", "kind": "AppConsent",
                "metadata": {"name": "c"}, "spec": {"customer": {"tenantId": "aaa"}}}),
        );
        add(
            &mut t,
            file,
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"},
                "spec": {"customer": {"tenantId": "bbb"}}}),
        );
        assert_eq!(t.objects, 2);
        assert_eq!(t.groups.keys().collect::<Vec<_>>(), ["g1", "g2"]);
        assert_eq!(t.groups["g1"][0].label, "GdapRelationship n/r (m.yaml)");
        let kinds: Vec<&str> = t.customers["aaa"].iter().map(|n| n.kind.as_str()).collect();
        assert_eq!(kinds, ["GdapRelationship", "AppConsent"]);
        assert!(
            !t.customers.contains_key("bbb"),
            "other API groups are ignored"
        );
    }
}
